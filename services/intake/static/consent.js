/*
 * Hush consent snippet, served by intake at /v1/consent.js. No build step, no dependencies.
 *
 * Install it as the FIRST script in <head>, synchronously (no async/defer), on a path that
 * reaches intake on the site's own origin, so the visitor cookie is first-party:
 *
 *   <script src="/v1/consent.js"></script>
 *
 * and mark every advertising or analytics tag so that it does not run by itself:
 *
 *   <script type="text/plain" data-hush-category="advertising" data-src="https://ads.example/tag.js"></script>
 *   <script type="text/plain" data-hush-category="analytics">/* inline tag code *\/</script>
 *
 * What it does, in order:
 *  1. Google Consent Mode v2 defaults: ad_storage, ad_user_data, ad_personalization and
 *     analytics_storage "denied" (with wait_for_update), before any tag can read them.
 *  2. A browser with Global Privacy Control (navigator.globalPrivacyControl === true) is opted
 *     out at once: consent stays denied and no marked tag is ever released, whatever the
 *     network answers.
 *  3. Installs window.__gpp (IAB GPP CMP API 1.1: ping, addEventListener, removeEventListener,
 *     hasSection, getSection, getField) and the __gppLocator frame.
 *  4. Asks intake (GET /v1/consent, with the site's cookies) for this visitor's state. Only an
 *     answer saying "not opted out" grants consent ("update") and releases the marked tags;
 *     a failure, a timeout or an opt-out keeps everything denied.
 *
 * Attributes on this <script> element: data-hush-endpoint (default "/v1/consent"),
 * data-hush-timeout-ms (default 2000). When done it sets data-hush-consent="granted"|"denied"
 * on <html> and dispatches a "hush:consent" event on window with the decision as its detail.
 */
(function (w, d) {
  'use strict';

  var me = d.currentScript;
  var attr = function (name, fallback) {
    return (me && me.getAttribute(name)) || fallback;
  };
  var endpoint = attr('data-hush-endpoint', '/v1/consent');
  var timeoutMs = Number(attr('data-hush-timeout-ms', '2000')) || 2000;

  // Which Consent Mode v2 types each tag category needs.
  var CATEGORIES = {
    advertising: ['ad_storage', 'ad_user_data', 'ad_personalization'],
    analytics: ['analytics_storage']
  };
  var TYPES = CATEGORIES.advertising.concat(CATEGORIES.analytics);

  function consentOf(value) {
    var consent = {};
    TYPES.forEach(function (type) { consent[type] = value; });
    return consent;
  }

  // 1. Consent Mode v2 defaults, before anything else.
  w.dataLayer = w.dataLayer || [];
  if (typeof w.gtag !== 'function') {
    w.gtag = function () { w.dataLayer.push(arguments); };
  }
  var defaults = consentOf('denied');
  defaults.wait_for_update = timeoutMs;
  w.gtag('consent', 'default', defaults);

  // 2. Global Privacy Control, honoured before any network round trip.
  var gpc = w.navigator.globalPrivacyControl === true;

  // 3. The IAB GPP CMP API.
  var gpp = {
    gppVersion: '1.1',
    cmpStatus: 'loaded',
    cmpDisplayStatus: 'disabled',
    signalStatus: 'not ready',
    supportedAPIs: ['7:usnat', '8:usca'],
    cmpId: 0,
    sectionList: [],
    applicableSections: [-1],
    gppString: 'DBAA',
    parsedSections: {}
  };
  var listeners = [];
  var nextListenerId = 1;

  function ping() {
    return JSON.parse(JSON.stringify(gpp));
  }

  function emit(eventName, data) {
    listeners.forEach(function (listener) {
      try {
        listener.callback({
          eventName: eventName,
          listenerId: listener.id,
          data: data,
          pingData: ping()
        }, true);
      } catch (e) { /* a listener's error is its own */ }
    });
  }

  function field(path) {
    var dot = String(path).indexOf('.');
    if (dot < 0) { return null; }
    var section = gpp.parsedSections[path.slice(0, dot)];
    var value = section ? section[path.slice(dot + 1)] : undefined;
    return value === undefined ? null : value;
  }

  function api(command, callback, parameter) {
    if (typeof callback !== 'function') { return; }
    var has = function (name) {
      return Object.prototype.hasOwnProperty.call(gpp.parsedSections, name);
    };
    switch (command) {
      case 'ping':
        callback(ping(), true);
        return;
      case 'addEventListener':
        var id = nextListenerId++;
        listeners.push({ id: id, callback: callback });
        callback({ eventName: 'listenerRegistered', listenerId: id, data: true, pingData: ping() }, true);
        return;
      case 'removeEventListener':
        var before = listeners.length;
        listeners = listeners.filter(function (l) { return l.id !== parameter; });
        callback(listeners.length < before, true);
        return;
      case 'hasSection':
        callback(has(parameter), true);
        return;
      case 'getSection':
        callback(has(parameter) ? JSON.parse(JSON.stringify(gpp.parsedSections[parameter])) : null, true);
        return;
      case 'getField':
        callback(field(parameter), true);
        return;
      default:
        callback(null, false);
    }
  }

  // Calls queued by a GPP stub loaded earlier are answered now.
  var queued = (typeof w.__gpp === 'function' && w.__gpp.queue) || [];
  w.__gpp = api;
  queued.forEach(function (args) { api.apply(null, args); });

  // Frames find the API through the __gppLocator frame and postMessage.
  function addLocator() {
    if (w.frames.__gppLocator) { return; }
    if (!d.body) { setTimeout(addLocator, 5); return; }
    var frame = d.createElement('iframe');
    frame.style.display = 'none';
    frame.name = '__gppLocator';
    frame.title = 'GPP locator';
    d.body.appendChild(frame);
  }
  addLocator();
  w.addEventListener('message', function (event) {
    var data = event.data;
    if (typeof data === 'string') {
      try { data = JSON.parse(data); } catch (e) { return; }
    }
    var call = data && data.__gppCall;
    if (!call || !event.source) { return; }
    api(call.command, function (returnValue, success) {
      event.source.postMessage({
        __gppReturn: { returnValue: returnValue, success: success, callId: call.callId }
      }, '*');
    }, call.parameter);
  });

  // 4. The marked tags, released only when their consent types are granted.
  function release(granted) {
    var tags = d.querySelectorAll('script[type="text/plain"][data-hush-category]');
    Array.prototype.forEach.call(tags, function (placeholder) {
      var types = CATEGORIES[placeholder.getAttribute('data-hush-category')];
      var allowed = granted && types && types.every(function (t) { return granted[t] === 'granted'; });
      placeholder.setAttribute('data-hush-loaded', allowed ? 'true' : 'false');
      if (!allowed) { return; }
      var tag = d.createElement('script');
      Array.prototype.forEach.call(placeholder.attributes, function (a) {
        if (a.name !== 'type' && a.name !== 'data-src' && a.name.indexOf('data-hush-') !== 0) {
          tag.setAttribute(a.name, a.value);
        }
      });
      var src = placeholder.getAttribute('data-src');
      if (src) { tag.src = src; } else { tag.text = placeholder.text; }
      placeholder.parentNode.insertBefore(tag, placeholder.nextSibling);
    });
  }

  var decided = false;
  function decide(answer, reason) {
    if (decided) { return; }
    decided = true;
    var optedOut = gpc || !answer || answer.opted_out !== false;
    var granted = null;
    if (!optedOut) {
      granted = consentOf('granted');
      w.gtag('consent', 'update', granted);
    }
    if (answer && typeof answer.gpp === 'string') {
      gpp.gppString = answer.gpp;
      gpp.sectionList = answer.gpp_sid || [];
      gpp.applicableSections = answer.gpp_sid || [-1];
      gpp.parsedSections = answer.sections || {};
    } else {
      gpp.cmpStatus = 'error';
    }
    gpp.signalStatus = 'ready';
    emit('sectionChange', 'all');
    emit('signalStatus', 'ready');
    var detail = {
      consent: optedOut ? 'denied' : 'granted',
      reason: gpc ? 'gpc' : reason,
      opted_out: optedOut,
      gpc: gpc || Boolean(answer && answer.gpc),
      us_privacy: answer && answer.us_privacy
    };
    d.documentElement.setAttribute('data-hush-consent', detail.consent);
    d.documentElement.setAttribute('data-hush-reason', detail.reason);
    var run = function () {
      if (!optedOut) { release(granted); } else { release(null); }
      w.dispatchEvent(new CustomEvent('hush:consent', { detail: detail }));
    };
    if (d.readyState === 'loading') {
      d.addEventListener('DOMContentLoaded', run);
    } else {
      run();
    }
  }

  var timer = setTimeout(function () { decide(null, 'timeout'); }, timeoutMs);
  fetch(endpoint + (gpc ? (endpoint.indexOf('?') < 0 ? '?' : '&') + 'gpc=1' : ''), {
    credentials: 'include',
    cache: 'no-store',
    headers: { Accept: 'application/json' }
  }).then(function (response) {
    if (!response.ok) { throw new Error('HTTP ' + response.status); }
    return response.json();
  }).then(function (answer) {
    clearTimeout(timer);
    decide(answer, answer.opted_out ? 'opted_out' : 'not_opted_out');
  }, function () {
    clearTimeout(timer);
    decide(null, 'unavailable');
  });
}(window, document));
