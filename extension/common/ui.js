// Small helpers shared by the options page and the popup: translated text and worker calls.
(function (global) {
  'use strict';

  const t = (key, subs) => chrome.i18n.getMessage(key, subs) || key;

  function translatePage(root = document) {
    document.documentElement.lang = chrome.i18n.getUILanguage().split('-')[0];
    for (const node of root.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
  }

  function ask(type, fields = {}) {
    return chrome.runtime.sendMessage({ type, ...fields });
  }

  /** Human text for a worker error or failure reason. */
  function describe(code) {
    const error = chrome.i18n.getMessage('error_' + code);
    return error || chrome.i18n.getMessage('reason_' + code) || code;
  }

  /** Human text for a refused change; a PIN back-off says how long to wait. */
  function refusalText(answer) {
    if (answer.error === 'pin_wait' && answer.waitSeconds) return t('pinWait', [String(answer.waitSeconds)]);
    return describe(answer.error || answer.reason || 'invalid');
  }

  /** Asks the browser to give back access to websites; must run straight from a click (a user gesture). */
  async function restoreSiteAccess() {
    try {
      await chrome.permissions.request({ origins: PhotoShieldSettings.neededOrigins() });
    } catch (_) {
      // Refused or not possible here: the worker's check below tells the truth either way.
    }
    return ask('checkSiteAccess');
  }

  /** Wires a page's "give access back" button, and renders again whenever the loss is found or mended. */
  function followSiteAccess(button, render) {
    button.addEventListener('click', async () => {
      await restoreSiteAccess();
      await render();
    });
    chrome.storage.onChanged.addListener((changes, area) => {
      if (area === 'local' && 'siteAccessLost' in changes) render();
    });
  }

  /** How to give access to websites back by hand, in the words of the browser this runs in. */
  function accessSteps() {
    return t(chrome.runtime.getURL('').startsWith('moz-extension:') ? 'accessStepsFirefox' : 'accessStepsChromium');
  }

  /** "3 photos protected, 1 face replaced" (needs common/plural.js). */
  function statsText(stats) {
    const { count } = global.PhotoShieldPlural;
    return t('popupStats', [count('statsPhotos', stats.photos), count('statsFaces', stats.faces)]);
  }

  /** The pairing as it really is, in words for the person: { kind: 'ok'|'info'|'error', text, canConnect }.
   * A browser never connected is where everyone starts (info), not an error. */
  function connectionState(settings, health, connectedKey) {
    if (health.ok) return { kind: 'ok', text: t(connectedKey, [health.version || '']), canConnect: false };
    if (!settings.token) return { kind: 'info', text: t('pairingNotPaired'), canConnect: true };
    if (health.reason === 'server_unreachable') return { kind: 'error', text: t('pairingNotRunning'), canConnect: false };
    return { kind: 'error', text: t('pairingBroken'), canConnect: true };
  }

  global.PhotoShieldUi = { t, translatePage, ask, describe, refusalText, followSiteAccess, accessSteps, statsText, connectionState };
})(globalThis);
