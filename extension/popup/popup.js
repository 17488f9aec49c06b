// Popup: connected or not, counts (never images), and the quick on/off switch (PIN-guarded when locked).
(function () {
  'use strict';

  const { t, translatePage, ask, describe, refusalText, followSiteAccess, accessSteps } = PhotoShieldUi;
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
    $('stats').textContent = t('popupStats', [String(state.stats.photos), String(state.stats.faces)]);
    $('access-lost').hidden = !state.siteAccessLost;
    $('state').hidden = false;
    document.body.dataset.accessLost = String(state.siteAccessLost);
    const health = await ask('testConnection', { port: state.settings.port, token: state.settings.token });
    if (health.ok) show('connection', true, t('popupConnected'));
    else show('connection', false, t('popupNotConnected', [describe(health.reason)]));
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
