// The page that says, in front of the person, that Photo Shield lost its access to websites and how to give
// it back in this browser; it turns green as soon as access is back.
(function () {
  'use strict';

  const { t, translatePage, ask, followSiteAccess, accessSteps } = PhotoShieldUi;
  const $ = (id) => document.getElementById(id);

  async function render() {
    const { siteAccessLost } = await ask('getState');
    $('lost').hidden = !siteAccessLost;
    $('back').hidden = siteAccessLost;
    document.body.dataset.accessLost = String(siteAccessLost);
    document.title = t(siteAccessLost ? 'accessLostTitle' : 'accessRestored'); // what the tab strip shows
  }

  followSiteAccess($('restore-access'), render);

  translatePage();
  $('steps').textContent = accessSteps();
  render();
})();
