// Options page: shows the effective settings and asks the service worker to change them.
// The worker checks the PIN and policy; this page only reports what it answered.
(function () {
  'use strict';

  const { t, translatePage, ask, describe } = PhotoShieldUi;
  const $ = (id) => document.getElementById(id);
  const SETTING_CONTROLS = ['enabled', 'review', 'timeoutSeconds', 'siteMode', 'siteList',
    'faceAction', 'mode', 'fill', 'color', 'margin'];

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

  async function render() {
    const state = await ask('getState');
    for (const key of [...SETTING_CONTROLS, 'port', 'token']) {
      writeControl(key, state.settings[key]);
      $(key).disabled = state.managedKeys.includes(key);
    }
    $('policy-note').hidden = state.managedKeys.length === 0 && !state.policyLocked;
    $('lock-state').textContent = state.hasPin ? t('lockOn') : t('lockOff');
    $('remove-pin').disabled = !state.hasPin;
    document.body.dataset.locked = String(state.locked);
  }

  async function save(patch) {
    const answer = await ask('saveSettings', { patch, pin: $('current-pin').value });
    show('save-result', answer.ok, answer.ok ? t('saved') : describe(answer.error));
    await render(); // a refused change snaps back to the real value
  }

  for (const key of SETTING_CONTROLS) {
    $(key).addEventListener('change', () => save({ [key]: readControl(key) }));
  }

  $('save-pairing').addEventListener('click', () => save({ port: readControl('port'), token: $('token').value.trim() }));

  $('test-connection').addEventListener('click', async () => {
    show('connection-result', true, t('testing'));
    const answer = await ask('testConnection', { port: Number($('port').value), token: $('token').value.trim() });
    if (answer.ok) show('connection-result', true, t('connectionOk', [answer.version]));
    else show('connection-result', false, t('connectionFailed', [describe(answer.reason)]));
  });

  $('set-pin').addEventListener('click', async () => {
    const answer = await ask('setPin', { newPin: $('new-pin').value, pin: $('current-pin').value });
    show('save-result', answer.ok, answer.ok ? t('saved') : describe(answer.error));
    $('new-pin').value = '';
    await render();
  });

  $('remove-pin').addEventListener('click', async () => {
    const answer = await ask('removePin', { pin: $('current-pin').value });
    show('save-result', answer.ok, answer.ok ? t('saved') : describe(answer.error));
    await render();
  });

  translatePage();
  render();
})();
