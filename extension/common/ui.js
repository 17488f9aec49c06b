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

  global.PhotoShieldUi = { t, translatePage, ask, describe };
})(globalThis);
