// Welcome page, opened on install: finds the local server, says how to start it, and pairs in one click
// (the person allows the request in the server's own page). docs/SECURITY.md, "One-click pairing".
(function () {
  'use strict';

  const { t, translatePage, ask, describe } = PhotoShieldUi;
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 1000;
  const GIVE_UP_MS = 130000; // the server forgets a request after 120 s

  /** kind: 'ok', 'error' or 'info' (a state, not a problem); no text hides the line. */
  function say(id, kind, text) {
    $(id).textContent = text || '';
    $(id).className = kind;
    $(id).hidden = !text;
  }

  // Before the person has done anything, nothing here is an error: a browser never connected and a
  // Photo Shield not started yet are where everyone begins. Only a connection that worked and broke is.
  async function render() {
    const state = await ask('getState');
    const health = await ask('testConnection', { port: state.settings.port, token: state.settings.token });
    const running = health.ok || health.reason !== 'server_unreachable';
    $('pin-row').hidden = !state.hasPin;
    $('not-running').hidden = running;
    $('connect-step').hidden = health.ok || !running;
    if (health.ok) say('server-state', 'ok', t('welcomePaired'));
    else if (!running) say('server-state', 'info', '');
    else if (state.settings.token) say('server-state', 'error', t('welcomeReconnect'));
    else say('server-state', 'info', t('welcomeRunning'));
  }

  async function waitForAnswer() {
    const giveUpAt = Date.now() + GIVE_UP_MS;
    while (Date.now() < giveUpAt) {
      const answer = await ask('pollPairing', { pin: $('pin').value });
      if (!answer.ok) return say('result', 'error', describe(answer.reason));
      if (answer.status === 'allowed') {
        say('result', 'info', ''); // render() says it once: "Connected: your uploads are now protected."
        $('code-step').hidden = true;
        return render();
      }
      if (answer.status === 'refused') return say('result', 'error', t('welcomeRefused'));
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    say('result', 'error', describe('pairing_expired'));
  }

  $('connect').addEventListener('click', async () => {
    say('result', 'info', '');
    const answer = await ask('startPairing', { pin: $('pin').value });
    if (!answer.ok) return say('result', 'error', describe(answer.reason));
    $('code').textContent = answer.code;
    $('code-step').hidden = false;
    await waitForAnswer();
  });
  $('retry').addEventListener('click', render);

  translatePage();
  render();
})();
