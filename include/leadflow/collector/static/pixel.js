/*
 * Lead flow pixel: sends landing-page form submissions to the lead flow collector.
 *
 * Include it once per page and mark each form to capture:
 *
 *   <script async src="https://collector.example.com/pixel.js"
 *           data-site-key="pk_..." data-endpoint="https://collector.example.com"></script>
 *   <form data-leadflow-form="demo-request"> ... </form>
 *
 * data-endpoint defaults to the origin the script was loaded from. Optional
 * attributes on form controls: data-leadflow-field="email" sends the control
 * under that name, data-leadflow-ignore leaves it out, and data-leadflow-consent
 * marks the consent checkbox (a checkbox named "consent" is found too).
 * Password and file inputs are never sent.
 *
 * The script never cancels, delays or changes the page's own submission, and
 * it catches its own errors. Each submit gets one submission_id
 * (crypto.randomUUID), and every retry resends that same id, so the collector
 * stores the submission once. Network errors, 5xx and 429 are retried with
 * exponential backoff that honours Retry-After. Until the collector accepts a
 * submission it is kept in localStorage for up to 24 hours, so a submission
 * cut off by navigation is resent on the next page of the same site.
 * NOTE: a form submitted with form.submit() fires no submit event, so it is
 * not captured; pages should call form.requestSubmit() instead.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || window.__leadflowPixelLoaded) {
    return;
  }
  window.__leadflowPixelLoaded = true;

  // Limits match the collector's validation, so a long form is trimmed here
  // instead of rejected there.
  var MAX_FIELDS = 50;
  var MAX_VALUE_CHARS = 2000;
  var MAX_PAGE_URL_CHARS = 2048;
  var MAX_BODY_BYTES = 15 * 1024;
  // Eight attempts with backoff of 1, 2, 4 ... 32, 60 s, each cut by a random
  // factor between 0.5 and 1, span about one to two minutes.
  var MAX_ATTEMPTS = 8;
  var BASE_DELAY_MS = 1000;
  var MAX_DELAY_MS = 60000;
  var STORE_KEY = "leadflow_pending_v1";
  var STORE_MAX_AGE_MS = 24 * 60 * 60 * 1000;
  var STORE_MAX_ITEMS = 20;
  var UTM_STORE_KEY = "leadflow_utm_v1";
  // A second submit of identical values within this window is a double
  // click, so it reuses the first submission_id.
  var DOUBLE_SUBMIT_MS = 10000;
  var SKIPPED_TYPES = { password: 1, file: 1, submit: 1, button: 1, reset: 1, image: 1 };

  var siteKey = script.getAttribute("data-site-key");
  var endpoint = script.getAttribute("data-endpoint") || originOf(script.src);
  if (!siteKey || !endpoint) {
    warn("data-site-key or data-endpoint is missing on the pixel script tag; no forms are captured");
    return;
  }
  var collectUrl = endpoint.replace(/\/+$/, "") + "/v1/collect";
  var lastSubmitByForm = {};

  function warn(message) {
    if (window.console && console.warn) {
      console.warn("leadflow pixel: " + message);
    }
  }

  function originOf(url) {
    try {
      return new URL(url).origin;
    } catch (error) {
      return "";
    }
  }

  function newSubmissionId() {
    var cryptoApi = window.crypto;
    if (cryptoApi && typeof cryptoApi.randomUUID === "function") {
      return cryptoApi.randomUUID();
    }
    // crypto.randomUUID exists only in secure contexts and newer browsers;
    // this builds the same version 4 UUID from getRandomValues.
    var bytes = new Uint8Array(16);
    if (cryptoApi && cryptoApi.getRandomValues) {
      cryptoApi.getRandomValues(bytes);
    } else {
      for (var i = 0; i < 16; i++) {
        bytes[i] = Math.floor(Math.random() * 256);
      }
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = [];
    for (var j = 0; j < 16; j++) {
      hex.push((bytes[j] + 0x100).toString(16).slice(1));
    }
    hex = hex.join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }

  // --- reading the form -------------------------------------------------------

  function isConsentControl(element) {
    return element.hasAttribute("data-leadflow-consent") || (element.type === "checkbox" && element.name === "consent");
  }

  function controlValue(element) {
    var type = (element.type || "").toLowerCase();
    if (type === "checkbox" || type === "radio") {
      return element.checked ? element.value || "on" : null;
    }
    if (type === "select-multiple") {
      var chosen = [];
      for (var i = 0; i < element.options.length; i++) {
        if (element.options[i].selected) {
          chosen.push(element.options[i].value);
        }
      }
      return chosen.join(", ");
    }
    return element.value == null ? "" : String(element.value);
  }

  function readForm(form) {
    var fields = {};
    var count = 0;
    var consent = false;
    var firstEmail = null;
    var elements = form.elements || [];
    for (var i = 0; i < elements.length; i++) {
      var element = elements[i];
      var type = (element.type || "").toLowerCase();
      if (element.disabled || SKIPPED_TYPES[type] || element.hasAttribute("data-leadflow-ignore")) {
        continue;
      }
      if (isConsentControl(element)) {
        consent = consent || !!element.checked;
        continue;
      }
      var name = element.getAttribute("data-leadflow-field") || element.name;
      if (!name) {
        continue;
      }
      var value = controlValue(element);
      if (value === null) {
        continue;
      }
      if (type === "email" && firstEmail === null) {
        firstEmail = value;
      }
      if (Object.prototype.hasOwnProperty.call(fields, name)) {
        fields[name] = (fields[name] + ", " + value).slice(0, MAX_VALUE_CHARS);
      } else if (count < MAX_FIELDS) {
        fields[name] = value.slice(0, MAX_VALUE_CHARS);
        count++;
      }
    }
    // The collector needs an "email" field; an email input under another name
    // provides it when the form has none.
    if (!Object.prototype.hasOwnProperty.call(fields, "email") && firstEmail !== null) {
      if (count >= MAX_FIELDS) {
        delete fields[Object.keys(fields)[count - 1]];
      }
      fields.email = firstEmail.slice(0, MAX_VALUE_CHARS);
    }
    return { fields: fields, consent: consent };
  }

  function readUtm() {
    var utm = {};
    var found = false;
    try {
      var params = new URLSearchParams(window.location.search);
      params.forEach(function (value, key) {
        if (/^utm_/.test(key) || key === "gclid" || key === "fbclid" || key === "li_fat_id") {
          utm[key] = value.slice(0, 500);
          found = true;
        }
      });
      // Campaign parameters arrive on the landing page; keep them for a form
      // on a later page of the same visit.
      if (found) {
        window.sessionStorage.setItem(UTM_STORE_KEY, JSON.stringify(utm));
      } else {
        utm = JSON.parse(window.sessionStorage.getItem(UTM_STORE_KEY) || "{}") || {};
      }
    } catch (error) {
      // Storage can be disabled; campaign parameters are optional.
    }
    return utm;
  }

  function encodedSize(text) {
    return window.TextEncoder ? new TextEncoder().encode(text).length : text.length * 3;
  }

  // Halve the longest non-email value until the body fits the collector's limit.
  function fitBody(body) {
    var text = JSON.stringify(body);
    while (encodedSize(text) > MAX_BODY_BYTES) {
      var longest = null;
      for (var name in body.fields) {
        if (name !== "email" && (longest === null || body.fields[name].length > body.fields[longest].length)) {
          longest = name;
        }
      }
      if (longest === null || body.fields[longest].length === 0) {
        break;
      }
      body.fields[longest] = body.fields[longest].slice(0, Math.floor(body.fields[longest].length / 2));
      text = JSON.stringify(body);
    }
    return text;
  }

  // --- pending store ------------------------------------------------------------

  function loadPending() {
    try {
      var pending = JSON.parse(window.localStorage.getItem(STORE_KEY) || "{}");
      return pending && typeof pending === "object" ? pending : {};
    } catch (error) {
      return {};
    }
  }

  function savePending(pending) {
    try {
      var ids = Object.keys(pending).sort(function (a, b) {
        return pending[a].savedAt - pending[b].savedAt;
      });
      while (ids.length > STORE_MAX_ITEMS) {
        delete pending[ids.shift()];
      }
      window.localStorage.setItem(STORE_KEY, JSON.stringify(pending));
    } catch (error) {
      // Without storage the in-page retries still run.
    }
  }

  function remember(id, text) {
    var pending = loadPending();
    pending[id] = { body: text, savedAt: Date.now() };
    savePending(pending);
  }

  function forget(id) {
    var pending = loadPending();
    if (Object.prototype.hasOwnProperty.call(pending, id)) {
      delete pending[id];
      savePending(pending);
    }
  }

  // --- sending --------------------------------------------------------------------

  function retryAfterMs(response) {
    var seconds = parseInt(response.headers.get("Retry-After") || "", 10);
    return isNaN(seconds) ? 0 : Math.min(seconds * 1000, MAX_DELAY_MS);
  }

  function scheduleRetry(id, text, attempt, minimumMs) {
    if (attempt + 1 >= MAX_ATTEMPTS) {
      // Kept in storage; the next page load of this site resends it.
      return;
    }
    var backoff = Math.min(BASE_DELAY_MS * Math.pow(2, attempt), MAX_DELAY_MS);
    var delay = Math.max(minimumMs, backoff * (0.5 + Math.random() / 2));
    window.setTimeout(function () {
      send(id, text, attempt + 1);
    }, delay);
  }

  function send(id, text, attempt) {
    if (!window.fetch) {
      return;
    }
    var request;
    try {
      // text/plain keeps this a CORS simple request: no preflight, and
      // keepalive lets it finish while the page navigates away.
      request = window.fetch(collectUrl, {
        method: "POST",
        body: text,
        keepalive: true,
        mode: "cors",
        credentials: "omit",
        headers: { "Content-Type": "text/plain;charset=UTF-8" },
      });
    } catch (error) {
      scheduleRetry(id, text, attempt, 0);
      return;
    }
    request.then(
      function (response) {
        if (response.ok) {
          forget(id);
        } else if (response.status === 429 || response.status >= 500) {
          scheduleRetry(id, text, attempt, retryAfterMs(response));
        } else {
          // Any other 4xx rejects this body, so resending it cannot succeed.
          forget(id);
          warn("the collector rejected a submission with HTTP status " + response.status);
        }
      },
      function () {
        // A network error, or a CORS failure that hides the status.
        scheduleRetry(id, text, attempt, 0);
      }
    );
  }

  function capture(form, formId) {
    var read = readForm(form);
    var signature = JSON.stringify(read);
    var previous = lastSubmitByForm[formId];
    var now = Date.now();
    var id = previous && previous.signature === signature && now - previous.at < DOUBLE_SUBMIT_MS ? previous.id : newSubmissionId();
    lastSubmitByForm[formId] = { id: id, signature: signature, at: now };

    var text = fitBody({
      submission_id: id,
      site_key: siteKey,
      form_id: String(formId).slice(0, 200),
      page_url: String(window.location.href).slice(0, MAX_PAGE_URL_CHARS),
      submitted_at: new Date(now).toISOString(),
      fields: read.fields,
      consent: read.consent,
      utm: readUtm(),
    });
    remember(id, text);
    send(id, text, 0);
  }

  function resendPending() {
    var pending = loadPending();
    var now = Date.now();
    var changed = false;
    for (var id in pending) {
      if (!Object.prototype.hasOwnProperty.call(pending, id)) {
        continue;
      }
      var item = pending[id];
      if (!item || typeof item.body !== "string" || now - item.savedAt > STORE_MAX_AGE_MS) {
        delete pending[id];
        changed = true;
      } else {
        send(id, item.body, 0);
      }
    }
    if (changed) {
      savePending(pending);
    }
  }

  // Capture phase, so a page handler that navigates or stops propagation
  // cannot run first. The listener never calls preventDefault.
  document.addEventListener(
    "submit",
    function (event) {
      try {
        var form = event.target;
        var formId = form && form.getAttribute ? form.getAttribute("data-leadflow-form") : null;
        if (formId) {
          capture(form, formId);
        }
      } catch (error) {
        warn("could not capture a form submission: " + (error && error.message));
      }
    },
    true
  );

  try {
    readUtm();
    resendPending();
  } catch (error) {
    warn("could not resend stored submissions: " + (error && error.message));
  }
})();
