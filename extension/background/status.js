// What the toolbar shows at a glance (protected / not connected / off / no access to websites), and the
// watch on the extension's access to websites: a person can withdraw it (Firefox about:addons, Chrome
// "Site access"), and then no content script runs, so no upload can be protected and no in-page notice
// can say so. The worker itself still runs: it shows the loss on the badge, in the popup and in a tab.
(function (global) {
  'use strict';

  const WARNING_PAUSE_MS = 1000; // one warning per burst of page loads
  const t = (key) => chrome.i18n.getMessage(key) || key;

  async function hasSiteAccess() {
    try {
      return await chrome.permissions.contains({ origins: PhotoShieldSettings.neededOrigins() });
    } catch (_) {
      return false;
    }
  }

  // Known from real traffic only (uploads, the popup's and options' checks): the worker never polls the
  // server by itself. Kept in session storage, as the service worker is stopped when idle.
  async function connection() {
    if (!chrome.storage.session) return null;
    const { connection: known } = await chrome.storage.session.get('connection').catch(() => ({}));
    return known || null;
  }

  const BADGES = {
    accessLost: { text: '!!', color: '#b91c1c', title: 'badgeAccessLost' },
    off: { text: 'OFF', color: '#6b7280', title: 'badgeOff' },
    notConnected: { text: '!', color: '#b45309', title: 'badgeNotConnected' },
    on: { text: 'ON', color: '#15803d', title: 'badgeOn' },
  };

  async function currentState() {
    const { siteAccessLost } = await chrome.storage.local.get('siteAccessLost');
    if (siteAccessLost) return 'accessLost';
    const { settings } = await PhotoShieldSettings.load();
    if (!settings.enabled) return 'off';
    if (!settings.token) return 'notConnected'; // never paired: every photo upload is blocked
    const known = await connection();
    if (known && !known.ok) return 'notConnected';
    return 'on';
  }

  let badgeUpdate = Promise.resolve();

  function refreshBadge() {
    badgeUpdate = badgeUpdate.then(async () => {
      const badge = BADGES[await currentState()];
      await chrome.action.setBadgeText({ text: badge.text });
      await chrome.action.setBadgeBackgroundColor({ color: badge.color });
      await chrome.action.setTitle({ title: `${t('extName')}: ${t(badge.title)}` });
    }).catch(() => {});
    return badgeUpdate;
  }

  // Reasons that say the server cannot be used at all, not that one photo was bad.
  const UNREACHABLE = ['server_unreachable', 'timeout', 'not_paired', 'not_photo_shield', 'forbidden'];

  async function noteConnection(ok, reason) {
    if (!ok && !UNREACHABLE.includes(reason)) return;
    if (chrome.storage.session) {
      await chrome.storage.session.set({ connection: { ok, reason: reason || '' } }).catch(() => {});
    }
    await refreshBadge();
  }

  async function forgetConnection() {
    if (chrome.storage.session) await chrome.storage.session.remove('connection').catch(() => {});
    await refreshBadge();
  }

  const optionsUrl = () => chrome.runtime.getURL(chrome.runtime.getManifest().options_ui.page);

  /** The tab showing the options page, if one is open (no "tabs" permission needed), or null. */
  async function warningTab() {
    if (chrome.runtime.getContexts) {
      const contexts = await chrome.runtime.getContexts({ contextTypes: ['TAB'] });
      const context = contexts.find((found) => found.documentUrl.split('#')[0] === optionsUrl());
      return context ? context.tabId : null;
    }
    const view = chrome.extension.getViews({ type: 'tab' }).find((found) => found.location.href.split('#')[0] === optionsUrl());
    const tab = view && await view.chrome.tabs.getCurrent();
    return tab ? tab.id : null;
  }

  let lastWarningAt = 0;

  /** Brings the options page, which says what was lost and how to give it back, to the FRONT: a tab of
   *  its own, made active (runtime.openOptionsPage() opens it in the background in Firefox). */
  async function showWarning() {
    if (Date.now() - lastWarningAt < WARNING_PAUSE_MS) return;
    lastWarningAt = Date.now();
    const open = await warningTab().catch(() => null);
    const tab = open !== null ? await chrome.tabs.update(open, { active: true })
      : await chrome.tabs.create({ url: optionsUrl(), active: true });
    if (tab && chrome.windows) await chrome.windows.update(tab.windowId, { focused: true }).catch(() => {});
  }

  const NOTIFICATION = 'photo-shield-access-lost';

  /** A system notification, the moment access is lost: the badge can be hidden (Firefox's Extensions menu). */
  async function notifyLoss() {
    if (!chrome.notifications) return;
    const options = { type: 'basic', iconUrl: chrome.runtime.getURL('icons/icon128.png'),
      title: t('accessLostTitle'), message: t('accessLostHowTo'), priority: 2 };
    // Chromium keeps it on screen until answered; Firefox refuses the option.
    if (!chrome.runtime.getURL('').startsWith('moz-extension:')) options.requireInteraction = true;
    await chrome.notifications.create(NOTIFICATION, options);
  }

  /** Compares what the browser grants with what the extension needs; warns when access was lost. */
  async function checkSiteAccess() {
    const lost = !(await hasSiteAccess());
    const { siteAccessLost } = await chrome.storage.local.get('siteAccessLost');
    if (lost !== Boolean(siteAccessLost)) {
      await chrome.storage.local.set({ siteAccessLost: lost });
      if (lost) await notifyLoss().catch(() => {});
      else if (chrome.notifications) await chrome.notifications.clear(NOTIFICATION).catch(() => {});
    }
    await refreshBadge();
    if (lost) await showWarning().catch(() => {});
    return lost;
  }

  function start() {
    if (chrome.notifications) {
      chrome.notifications.onClicked.addListener((id) => { if (id === NOTIFICATION) showWarning().catch(() => {}); });
    }
    chrome.permissions.onRemoved.addListener(() => { checkSiteAccess(); });
    chrome.permissions.onAdded.addListener(() => { checkSiteAccess(); });
    // A listener here also makes Chromium start the worker with the browser, so the check runs at start-up.
    chrome.runtime.onStartup.addListener(() => { checkSiteAccess(); });
    // With access lost no content script runs: the next page the person opens brings the warning back.
    chrome.tabs.onUpdated.addListener((tabId, change) => {
      if (change.status !== 'complete') return;
      chrome.storage.local.get('siteAccessLost').then(({ siteAccessLost }) => {
        if (siteAccessLost) showWarning().catch(() => {});
      });
    });
    chrome.storage.onChanged.addListener((changes, area) => {
      if (area === 'managed' || 'settings' in changes) forgetConnection(); // new port or token: unknown again
    });
    // Withdrawn access does not always fire permissions.onRemoved (e.g. changed while the browser was
    // closed): look again every few minutes, and at every start.
    if (chrome.alarms) {
      chrome.alarms.create('photo-shield-site-access', { periodInMinutes: 5 });
      chrome.alarms.onAlarm.addListener((alarm) => {
        if (alarm.name === 'photo-shield-site-access') checkSiteAccess();
      });
    }
    checkSiteAccess();
  }

  global.PhotoShieldStatus = { start, refreshBadge, noteConnection, checkSiteAccess };
})(globalThis);
