// Welcome page, opened on install: finds the local server, says how to start it, and pairs in one click
// (the person allows the request in the server's own page). docs/SECURITY.md, "One-click pairing".
(function () {
  'use strict';

  const { t, translatePage, ask, describe } = PhotoShieldUi;
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 1000;
  const GIVE_UP_MS = 130000; // the server forgets a request after 120 s

  function say(id, ok, text) {
    $(id).textContent = text;
    $(id).className = ok ? 'ok' : 'error';
  }

  async function render() {
    const state = await ask('getState');
    const health = await ask('testConnection', { port: state.settings.port, token: state.settings.token });
    $('pin-row').hidden = !state.hasPin;
    $('not-running').hidden = health.ok || health.reason !== 'server_unreachable';
    $('connect-step').hidden = health.ok || health.reason === 'server_unreachable';
    if (health.ok) say('server-state', true, t('popupConnected'));
    else say('server-state', false, t('popupNotConnected', [describe(health.reason)]));
  }

  async function waitForAnswer() {
    const giveUpAt = Date.now() + GIVE_UP_MS;
    while (Date.now() < giveUpAt) {
      const answer = await ask('pollPairing', { pin: $('pin').value });
      if (!answer.ok) return say('result', false, describe(answer.reason));
      if (answer.status === 'allowed') {
        say('result', true, t('welcomePaired'));
        $('code-step').hidden = true;
        return render();
      }
      if (answer.status === 'refused') return say('result', false, t('welcomeRefused'));
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    say('result', false, describe('pairing_expired'));
  }

  $('connect').addEventListener('click', async () => {
    $('result').textContent = '';
    const answer = await ask('startPairing', { pin: $('pin').value });
    if (!answer.ok) return say('result', false, describe(answer.reason));
    $('code').textContent = answer.code;
    $('code-step').hidden = false;
    await waitForAnswer();
  });
  $('retry').addEventListener('click', render);

  translatePage();
  render();
})();
