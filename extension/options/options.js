// Options page: shows the effective settings and asks the service worker to change them.
// The worker checks the PIN and policy; this page only reports what it answered.
(function () {
  'use strict';

  const { t, translatePage, ask, describe, refusalText, followSiteAccess, statsText, connectionState } = PhotoShieldUi;
  const $ = (id) => document.getElementById(id);
  const SETTING_CONTROLS = ['enabled', 'review', 'reviewAddRegions', 'reviewUntick', 'timeoutSeconds', 'siteMode',
    'siteList', 'faceAction', 'mode', 'fill', 'color', 'sticker', 'margin', 'videoAction', 'otherFileAction'];

  // Fields the person edited and has not saved yet: a render (the first one can take seconds in a fresh
  // profile) must not overwrite what they typed.
  const dirty = new Set();

  function readControl(key) {
    const control = $(key);
    if (control.type === 'checkbox') return control.checked;
    if (control.type === 'number') return Number(control.value);
    if (key === 'siteList') return control.value.split(/[\s,]+/).filter(Boolean);
    if (key === 'color') return control.value.replace(/^#/, '');
    return control.value;
  }

  function writeControl(key, value) {
    const control = $(key);
    if (control.type === 'checkbox') control.checked = value;
    else if (key === 'siteList') control.value = value.join('\n');
    else if (key === 'color') control.value = '#' + value;
    else control.value = String(value);
  }

  function show(id, ok, text) {
    const line = $(id);
    line.textContent = text;
    line.className = ok ? 'ok' : 'error';
  }

  async function showIncognito() {
    let allowed = false;
    try { allowed = await chrome.extension.isAllowedIncognitoAccess(); } catch (_) { /* unknown: say no */ }
    $('incognito-state').textContent = t(allowed ? 'incognitoAllowed' : 'incognitoNotAllowed');
    $('incognito-state').className = allowed ? 'ok' : 'error';
    document.body.dataset.incognito = String(allowed);
  }

  // The pairing as it is (asked of the server; not awaited by render, which must not wait seconds for it).
  async function showPairing(settings) {
    const health = await ask('testConnection', { port: settings.port, token: settings.token });
    const connection = connectionState(settings, health, 'pairingConnected');
    $('pairing-state').textContent = connection.text;
    $('pairing-state').className = connection.kind;
    $('connect').hidden = !connection.canConnect;
    document.body.dataset.paired = String(health.ok);
  }

  async function render() {
    const state = await ask('getState');
    showPairing(state.settings);
    for (const key of [...SETTING_CONTROLS, 'port', 'token']) {
      if (!dirty.has(key)) writeControl(key, state.settings[key]);
      $(key).disabled = state.managedKeys.includes(key);
    }
    $('access-lost').hidden = !state.siteAccessLost;
    $('policy-note').hidden = state.managedKeys.length === 0 && !state.policyLocked;
    $('lock-state').textContent = state.hasPin ? t('lockOn') : t('lockOff');
    $('remove-pin').disabled = !state.hasPin;
    $('pin-wait').textContent = state.pinWaitSeconds ? t('pinWait', [String(state.pinWaitSeconds)]) : '';
    $('stats').textContent = statsText(state.stats);
    document.body.dataset.locked = String(state.locked);
    document.body.dataset.accessLost = String(state.siteAccessLost);
  }

  function report(answer) {
    show('save-result', answer.ok, answer.ok ? t('saved') : refusalText(answer));
  }

  async function save(patch) {
    const answer = await ask('saveSettings', { patch, pin: $('current-pin').value });
    report(answer);
    for (const key of Object.keys(patch)) dirty.delete(key);
    await render(); // a refused change snaps back to the real value
  }

  for (const key of [...SETTING_CONTROLS, 'port', 'token']) {
    $(key).addEventListener('input', () => dirty.add(key));
  }
  for (const key of SETTING_CONTROLS) {
    $(key).addEventListener('change', () => save({ [key]: readControl(key) }));
  }

  $('connect').addEventListener('click', () => { location.href = chrome.runtime.getURL('welcome/welcome.html'); });

  $('save-pairing').addEventListener('click', () => save({ port: readControl('port'), token: $('token').value.trim() }));

  $('test-connection').addEventListener('click', async () => {
    show('connection-result', true, t('testing'));
    const answer = await ask('testConnection', { port: Number($('port').value), token: $('token').value.trim() });
    if (answer.ok) show('connection-result', true, t('connectionOk', [answer.version]));
    else show('connection-result', false, t('connectionFailed', [describe(answer.reason)]));
  });

  $('set-pin').addEventListener('click', async () => {
    const answer = await ask('setPin', { newPin: $('new-pin').value, pin: $('current-pin').value });
    report(answer);
    $('new-pin').value = '';
    await render();
  });

  $('remove-pin').addEventListener('click', async () => {
    report(await ask('removePin', { pin: $('current-pin').value }));
    await render();
  });

  $('reset-stats').addEventListener('click', async () => {
    report(await ask('resetStats', { pin: $('current-pin').value }));
    await render();
  });

  followSiteAccess($('restore-access'), render);

  translatePage();
  showIncognito();
  render();
})();
