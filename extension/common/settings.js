// The one settings schema, shared by the service worker, the options page and the popup.
// Stored settings hold only what the person chose; policy (chrome.storage.managed) wins over them,
// and defaults fill the rest.
(function (global) {
  'use strict';

  const FIELDS = {
    enabled: { type: 'boolean', default: true },
    port: { type: 'integer', default: 47321, min: 1, max: 65535 },
    token: { type: 'string', default: '', maxLength: 512 },
    siteMode: { type: 'enum', default: 'everywhere', values: ['everywhere', 'only', 'except'] },
    siteList: { type: 'siteList', default: [] },
    faceAction: { type: 'enum', default: 'replace', values: ['replace', 'block'] },
    fill: { type: 'enum', default: 'solid', values: ['solid', 'noise', 'sticker'] },
    color: { type: 'color', default: '000000' },
    sticker: { type: 'enum', default: 'smile', values: ['smile', 'cat', 'heart', 'star', 'flower'] },
    margin: { type: 'number', default: 0.3, min: 0, max: 2 },
    // Parental (locked) profiles hide whole people unless someone chose otherwise.
    mode: { type: 'enum', default: 'faces', lockedDefault: 'people', values: ['faces', 'people'] },
    review: { type: 'boolean', default: false },
    // In review: may the person cover more (regions), and leave a detected face as it is (untick)?
    reviewAddRegions: { type: 'boolean', default: true },
    reviewUntick: { type: 'boolean', default: true, lockedDefault: false },
    timeoutSeconds: { type: 'number', default: 20, min: 1, max: 120 },
    // Videos go through the server's video jobs; 'ask' (a locked profile blocks instead) and 'block' are
    // for people who want no video to leave, even protected.
    videoAction: { type: 'enum', default: 'protect', values: ['protect', 'ask', 'block'] },
    // Documents, audio, archives and every other file that is neither a photo nor a video.
    otherFileAction: { type: 'enum', default: 'allow', values: ['allow', 'ask', 'block'] },
  };

  // Policy-only keys: they exist in managed_schema.json but not in the options page.
  const POLICY_KEYS = { lockedProfile: { type: 'boolean', default: false } };

  function normalizeHost(entry) {
    let text = String(entry).trim().toLowerCase();
    if (!text) return '';
    text = text.replace(/^[a-z][a-z0-9+.-]*:\/\//, '').replace(/[/?#].*$/, '').replace(/:\d+$/, '');
    return text.replace(/^\*\./, '').replace(/\.$/, '');
  }

  function coerce(field, value) {
    switch (field.type) {
      case 'boolean':
        return typeof value === 'boolean' ? value : undefined;
      case 'integer': {
        const n = Number(value);
        return Number.isInteger(n) && n >= field.min && n <= field.max ? n : undefined;
      }
      case 'number': {
        const n = Number(value);
        return Number.isFinite(n) && n >= field.min && n <= field.max ? n : undefined;
      }
      case 'string':
        return typeof value === 'string' && value.length <= field.maxLength ? value.trim() : undefined;
      case 'enum':
        return field.values.includes(value) ? value : undefined;
      case 'color': {
        const hex = String(value).replace(/^#/, '').toLowerCase();
        return /^[0-9a-f]{6}$/.test(hex) ? hex : undefined;
      }
      case 'siteList': {
        const list = Array.isArray(value) ? value : String(value ?? '').split(/[\s,]+/);
        return [...new Set(list.map(normalizeHost).filter(Boolean))];
      }
      default:
        return undefined;
    }
  }

  /** Keeps only valid known keys; invalid values are dropped rather than guessed. */
  function validate(raw, fields = FIELDS) {
    const clean = {};
    for (const [key, value] of Object.entries(raw || {})) {
      if (!(key in fields)) continue;
      const coerced = coerce(fields[key], value);
      if (coerced !== undefined) clean[key] = coerced;
    }
    return clean;
  }

  /** Effective settings from what was stored, what policy enforces, and whether a lock is on. */
  function resolve(stored, managedRaw, pinRecord) {
    const managed = validate(managedRaw, FIELDS);
    const policy = validate(managedRaw, POLICY_KEYS);
    const locked = Boolean(pinRecord) || policy.lockedProfile === true;
    const chosen = validate(stored, FIELDS);
    const settings = {};
    for (const [key, field] of Object.entries(FIELDS)) {
      if (key in managed) settings[key] = managed[key];
      else if (key in chosen) settings[key] = chosen[key];
      else if (locked && 'lockedDefault' in field) settings[key] = field.lockedDefault;
      else settings[key] = Array.isArray(field.default) ? [...field.default] : field.default;
    }
    return {
      settings,
      locked,
      hasPin: Boolean(pinRecord),
      policyLocked: policy.lockedProfile === true,
      managedKeys: Object.keys(managed),
    };
  }

  function hostMatches(host, pattern) {
    return host === pattern || host.endsWith('.' + pattern);
  }

  /** Whether uploads from this page URL go through the shield. Unknown URLs are covered. */
  function siteCovered(settings, pageUrl) {
    if (settings.siteMode === 'everywhere') return true;
    let host = '';
    try { host = new URL(pageUrl).hostname.toLowerCase(); } catch (_) { return true; }
    const listed = settings.siteList.some((pattern) => hostMatches(host, pattern));
    return settings.siteMode === 'only' ? listed : !listed;
  }

  function storageArea(name) {
    const area = global.chrome || global.browser;
    return area && area.storage && area.storage[name];
  }

  // Chromium's first read of policy can take seconds, so it is read once and kept until it changes.
  let managedCache = null;

  function readManaged() {
    if (!managedCache) {
      const area = storageArea('managed');
      managedCache = area ? area.get(null).then((values) => values || {}, () => ({})) : Promise.resolve({});
    }
    return managedCache;
  }

  const api = global.chrome || global.browser;
  if (api && api.storage && api.storage.onChanged) {
    api.storage.onChanged.addListener((changes, areaName) => {
      if (areaName === 'managed') managedCache = null;
    });
  }

  /** Reads everything the decision code needs, in one go. */
  async function load() {
    const local = await storageArea('local').get(['settings', 'pin']);
    return resolve(local.settings, await readManaged(), local.pin);
  }

  /** Every origin the extension needs: where its content scripts run, and the local server. */
  function neededOrigins() {
    const manifest = api.runtime.getManifest();
    const origins = new Set(manifest.host_permissions || []);
    for (const script of manifest.content_scripts || []) for (const match of script.matches) origins.add(match);
    return [...origins];
  }

  global.PhotoShieldSettings = {
    FIELDS, POLICY_KEYS, validate, resolve, siteCovered, normalizeHost, load, readManaged, neededOrigins,
  };
})(globalThis);
