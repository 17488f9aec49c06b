// What the toolbar shows at a glance (protected / not connected / off / no access to websites), and the
// watch on the extension's access to websites: a person can withdraw it (Firefox about:addons, Chrome
// "Site access"), and then no content script runs, so no upload can be protected and no in-page notice
// can say so. The worker itself still runs: it shows the loss on the badge and in the popup, and once per
// loss with a system notification and a page brought to the front.
(function (global) {
  'use strict';

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

  const WARNING_PAGE = 'access/access.html';
  const NOTIFICATION = 'photo-shield-access-lost';
  // "Warned for this loss": session storage outlives a stopped worker but not a browser restart, so a loss
  // still there at the next start is announced again.
  const warnings = () => chrome.storage.session || chrome.storage.local;

  /** The tab showing the warning page, if one is open (no "tabs" permission needed). */
  async function warningTab() {
    const url = chrome.runtime.getURL(WARNING_PAGE);
    if (chrome.runtime.getContexts) {
      const contexts = await chrome.runtime.getContexts({ contextTypes: ['TAB'], documentUrls: [url] });
      return contexts.length ? { id: contexts[0].tabId, windowId: contexts[0].windowId } : null;
    }
    const view = chrome.extension.getViews({ type: 'tab' }).find((v) => v.location.href.split('#')[0] === url);
    return view ? view.chrome.tabs.getCurrent() : null;
  }

  /** Puts the warning page in front of the person: the open one, or a new tab (never a background tab). */
  async function showWarningPage() {
    const open = await warningTab().catch(() => null);
    const tab = open
      ? await chrome.tabs.update(open.id, { active: true })
      : await chrome.tabs.create({ url: chrome.runtime.getURL(WARNING_PAGE), active: true });
    if (tab && chrome.windows) await chrome.windows.update(tab.windowId, { focused: true }).catch(() => {});
  }

  async function notify() {
    const options = { type: 'basic', iconUrl: chrome.runtime.getURL('icons/icon128.png'),
      title: t('notificationAccessLostTitle'), message: t('notificationAccessLostText'), priority: 2 };
    // Chromium keeps it on screen until answered; Firefox refuses the option.
    if (!chrome.runtime.getURL('').startsWith('moz-extension:')) options.requireInteraction = true;
    await chrome.notifications.create(NOTIFICATION, options);
  }

  /** Once per loss: a system notification and the warning page in front. */
  async function warnOnce() {
    const { accessWarned } = await warnings().get('accessWarned');
    if (accessWarned) return;
    await warnings().set({ accessWarned: true });
    await Promise.all([notify().catch(() => {}), showWarningPage().catch(() => {})]);
  }

  async function clearWarning() {
    await warnings().remove('accessWarned');
    await chrome.notifications.clear(NOTIFICATION).catch(() => {});
  }

  /** Compares what the browser grants with what the extension needs; warns when access was lost. */
  async function compareSiteAccess() {
    const lost = !(await hasSiteAccess());
    const { siteAccessLost } = await chrome.storage.local.get('siteAccessLost');
    if (lost !== Boolean(siteAccessLost)) {
      await chrome.storage.local.set({ siteAccessLost: lost });
    }
    await refreshBadge();
    await (lost ? warnOnce() : clearWarning()).catch(() => {});
    return lost;
  }

  let checking = Promise.resolve();

  /** One check at a time, so that a burst of events warns once. */
  function checkSiteAccess() {
    checking = checking.catch(() => {}).then(compareSiteAccess);
    return checking;
  }

  function start() {
    chrome.permissions.onRemoved.addListener(() => { checkSiteAccess(); });
    chrome.permissions.onAdded.addListener(() => { checkSiteAccess(); });
    // A listener here also makes Chromium start the worker with the browser, so the check runs at start-up.
    chrome.runtime.onStartup.addListener(() => { checkSiteAccess(); });
    // Access can be withdrawn without permissions.onRemoved (e.g. while the browser was closed): look
    // again whenever a page finishes loading, as well as every few minutes and at every start (below).
    chrome.tabs.onUpdated.addListener((tabId, change) => {
      if (change.status === 'complete') checkSiteAccess();
    });
    chrome.notifications.onClicked.addListener((id) => {
      if (id === NOTIFICATION) showWarningPage().catch(() => {});
    });
    chrome.storage.onChanged.addListener((changes, area) => {
      if (area === 'managed' || 'settings' in changes) forgetConnection(); // new port or token: unknown again
    });
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
