// Counted phrases in the right plural form. chrome.i18n has no plural rules, so each counted phrase has one
// message per plural category of its language (<key>_one, <key>_other; French counts 0 as "one"), picked
// with Intl.PluralRules for the language the messages are in (pluralLocale), not the browser's.
(function (global) {
  'use strict';

  function count(key, number) {
    const language = chrome.i18n.getMessage('pluralLocale') || 'en';
    const category = new Intl.PluralRules(language).select(number);
    const subs = [String(number)];
    return chrome.i18n.getMessage(`${key}_${category}`, subs) || chrome.i18n.getMessage(`${key}_other`, subs);
  }

  global.PhotoShieldPlural = { count };
})(globalThis);
