// Popup: connected or not, counts (never images), and the quick on/off switch (PIN-guarded when locked).
(function () {
  'use strict';

  const { t, translatePage, ask, refusalText, followSiteAccess, accessSteps, statsText, connectionState } = PhotoShieldUi;
  const $ = (id) => document.getElementById(id);

  function show(id, ok, text) {
    $(id).textContent = text;
    $(id).className = ok ? 'ok' : 'error';
  }

  async function render() {
    const state = await ask('getState');
    $('enabled').checked = state.settings.enabled;
    $('enabled').disabled = state.managedKeys.includes('enabled');
    $('pin-row').hidden = !state.hasPin;
    $('stats').textContent = statsText(state.stats);
    $('access-lost').hidden = !state.siteAccessLost;
    $('state').hidden = false;
    document.body.dataset.accessLost = String(state.siteAccessLost);
    const health = await ask('testConnection', { port: state.settings.port, token: state.settings.token });
    const connection = connectionState(state.settings, health, 'popupConnected');
    $('connection').textContent = connection.kind === 'info' ? t('popupNotPaired') : connection.text;
    $('connection').className = connection.kind;
  }

  $('enabled').addEventListener('change', async () => {
    const answer = await ask('saveSettings', { patch: { enabled: $('enabled').checked }, pin: $('pin').value });
    show('result', answer.ok, answer.ok ? t('saved') : refusalText(answer));
    await render();
  });

  followSiteAccess($('restore-access'), render);

  $('open-options').addEventListener('click', () => chrome.runtime.openOptionsPage());

  translatePage();
  $('access-steps').textContent = accessSteps();
  render();
})();
