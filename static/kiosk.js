// The water kiosk (/kiosk/<code>): a reference client of the water API, for touch and keyboard.
// Paired once per device with its station's key, kept in localStorage under a name holding the
// station's code; every request carries it as `Authorization: Bearer`. The page shows one screen
// at a time: pair, idle, phone, amount, preview, paying, code, dispensing, thanks, notice.
// A file, not inline script: the page's Content-Security-Policy forbids inline script.
(function () {
  "use strict";

  var root = document.getElementById("kiosk");
  var data = root.dataset;
  var STATION = data.station;
  var STORE = "water-kiosk:" + STATION + ":key"; // /kiosk/STATION001 and /kiosk/STATION002 pair apart
  var FLOW = parseFloat(data.flowLitersPerSecond); // the simulated meter's liters a second
  var IDLE_RETURN_MS = parseFloat(data.idleReturnSeconds) * 1000;
  var ABANDON_MS = parseFloat(data.abandonSeconds) * 1000;
  var CODE_MS = parseFloat(data.codeMinutes) * 60000; // a code's life from its SMS (OTP_EXPIRY_MINUTES)
  var PLACEHOLDER = data.referencePlaceholder;
  var URLS = {
    whoami: data.urlWhoami,
    preview: data.urlPreview,
    initiate: data.urlInitiate,
    status: data.urlStatus,
    verify: data.urlVerify,
    complete: data.urlComplete,
  };
  // Seconds before each look at the payment's status: quick at first (most people answer the
  // prompt within seconds), then slower; 13 looks in about two minutes, after which M-Pesa has
  // given up on the prompt too. A sale stays near ten requests, far inside the water API's
  // 100 per 15 minutes for the kiosk's address.
  var POLLS = [3, 3, 4, 5, 6, 8, 10, 12, 15, 15, 15, 15, 15];
  var ENDED = { failed: true, cancelled: true, timeout: true, reversed: true };
  var WAITING_FOR_TOUCH = { phone: true, amount: true, preview: true, otp: true, unpair: true };
  var FOCUS = {
    loading: "loading-title",
    pair: "pair-key",
    idle: "start",
    unpair: "unpair-keep",
    phone: "phone-input",
    amount: "amount-input",
    preview: "pay",
    paying: "paying-title",
    otp: "otp-input",
    dispensing: "dispensing-title",
    thanks: "thanks-done",
    notice: "notice-ok",
  };

  var state = {
    key: null, // the station's key, once paired
    station: null, // what the key said about its station (whoami)
    screen: "loading",
    flow: 0, // one customer's go; bumped on every return to idle, so late answers of an old go are dropped
    busy: -1, // the go whose request is under way (a second tap does not send it twice)
    phone: "", // the digits typed
    sale: null, // {amount, liters, reference, receipt}
    timer: null, // the closing screen's return to idle
    abandon: null, // the untouched screen's return to idle
  };
  var pausedUntil = 0; // the rate limit's reset: no request leaves before it

  function $(id) {
    return document.getElementById(id);
  }
  function say(id, words) {
    var element = $(id);
    element.textContent = words;
    delete element.dataset.tone;
  }
  // A message that something went wrong (drawn in red); say() for what is merely going on.
  function warn(id, words) {
    say(id, words);
    $(id).dataset.tone = "error";
  }
  function sleep(ms) {
    return new Promise(function (resolve) {
      setTimeout(resolve, ms);
    });
  }
  function kes(amount) {
    return "KES " + String(amount).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }
  function litersWord(n) {
    return n + (n === 1 ? " liter" : " liters");
  }
  function localPhone(digits) {
    return digits.indexOf("254") === 0 ? "0" + digits.slice(3) : digits;
  }
  function spacedPhone(digits) {
    var local = localPhone(digits);
    return local.slice(0, 4) + " " + local.slice(4, 7) + " " + local.slice(7);
  }
  function maskedPhone(digits) {
    var local = localPhone(digits);
    return local.slice(0, 2) + "xx xxx " + local.slice(7);
  }
  function stored(value) {
    try {
      if (value === undefined) return window.localStorage.getItem(STORE);
      if (value === null) window.localStorage.removeItem(STORE);
      else window.localStorage.setItem(STORE, value);
    } catch (error) {
      return null; // storage refused (a private window): the kiosk asks for its key on every load
    }
    return value;
  }

  // -- screens ------------------------------------------------------------------------------
  function show(name) {
    clearTimeout(state.timer);
    state.timer = null;
    document.querySelectorAll(".screen").forEach(function (screen) {
      screen.hidden = screen.id !== "screen-" + name;
    });
    state.screen = name;
    $("unpair-open").hidden = name !== "idle";
    touched();
    var target = $(FOCUS[name]);
    if (target) target.focus();
  }

  // An untouched screen goes back to idle; the code screen of a customer who has paid waits
  // instead as long as the code lasts (the SMS may be slow), however often it is touched.
  function touched() {
    clearTimeout(state.abandon);
    state.abandon = null;
    if (state.screen === "otp") {
      state.abandon = setTimeout(codeExpired, Math.max(0, state.sale.codeExpires - Date.now()));
    } else if (WAITING_FOR_TOUCH[state.screen]) {
      state.abandon = setTimeout(toIdle, ABANDON_MS);
    }
  }

  function closing(name) {
    show(name);
    state.timer = setTimeout(toIdle, IDLE_RETURN_MS);
  }

  function toIdle() {
    state.flow += 1;
    state.sale = null;
    state.phone = "";
    document.querySelectorAll(".entry-value").forEach(function (input) {
      input.value = "";
    });
    ["phone-message", "amount-message", "preview-message"].forEach(function (id) {
      say(id, "");
    });
    if (!state.key) {
      show("pair");
      return;
    }
    show("idle");
  }

  function notice(title, words, next) {
    say("notice-title", title);
    say("notice-text", words);
    say("notice-next", next || "");
    closing("notice");
  }

  function merchant(joint) {
    return state.station ? joint + state.station.merchantName : "";
  }

  // What a customer whose code cannot be used does next: people who can look the payment up.
  function askFor(what) {
    var receipt = state.sale && state.sale.receipt ? " Quote your M-Pesa receipt " + state.sale.receipt + "." : "";
    return "Ask the attendant" + merchant(" or ") + " for " + what + "." + receipt;
  }

  // -- the API ------------------------------------------------------------------------------
  function Stop() {} // thrown to end a go: the key stopped working, or the customer left

  function noteLimit(response) {
    var limited = response.status === 429;
    if (!limited && response.headers.get("X-RateLimit-Remaining") !== "0") return;
    var wait = 0;
    var reset = parseFloat(response.headers.get("X-RateLimit-Reset"));
    var served = Date.parse(response.headers.get("Date") || "");
    if (!isNaN(reset) && !isNaN(served)) wait = reset * 1000 - served + 1000; // by the server's clock
    var retryAfter = parseFloat(response.headers.get("Retry-After"));
    if (!isNaN(retryAfter)) wait = Math.max(wait, retryAfter * 1000);
    if (limited && !(wait > 0)) wait = 60000;
    if (wait > 0) pausedUntil = Math.max(pausedUntil, Date.now() + wait);
  }

  // One request with the kiosk's key (or `options.key`, a key being paired). Over the rate limit
  // it waits for the window to reset and asks again, instead of hammering. Answers
  // {status, body}; status 0 when the server could not be reached.
  async function api(method, url, body, options) {
    options = options || {};
    var flow = state.flow;
    for (;;) {
      var wait = pausedUntil - Date.now();
      if (wait > 0) {
        say("kiosk-wait", "Busy: the kiosk goes on in " + Math.ceil(wait / 1000) + " s");
        await sleep(wait);
        say("kiosk-wait", "");
        if (flow !== state.flow) throw new Stop();
      }
      var response;
      try {
        response = await fetch(url, {
          method: method,
          headers: { Authorization: "Bearer " + (options.key || state.key), "Content-Type": "application/json" },
          body: body ? JSON.stringify(body) : undefined,
          cache: "no-store",
          credentials: "omit",
        });
      } catch (error) {
        return { status: 0, body: {} };
      }
      noteLimit(response);
      if (response.status === 429) continue;
      var answer = {};
      try {
        answer = await response.json();
      } catch (error) {
        answer = {};
      }
      if (response.status === 401 && !options.key) {
        unpaired(
          "This kiosk's key stopped working: it was rotated, or the station was disabled. " +
            "Pair it again with the station's current key."
        );
        throw new Stop();
      }
      if (flow !== state.flow) throw new Stop();
      return { status: response.status, body: answer };
    }
  }

  // Runs one step of a go; a second tap while it runs is ignored.
  function step(action) {
    return function (event) {
      if (event) event.preventDefault();
      if (state.busy === state.flow) return;
      var flow = (state.busy = state.flow);
      Promise.resolve()
        .then(action)
        .catch(function (error) {
          if (!(error instanceof Stop)) throw error;
        })
        .finally(function () {
          if (state.busy === flow) state.busy = -1;
        });
    };
  }

  // -- pairing ------------------------------------------------------------------------------
  function known(station) {
    state.station = station;
    var pricing = station.pricing;
    say("station-name", station.name);
    say("idle-price", kes(pricing.pricePerLiter) + " a liter");
    say(
      "amount-hint",
      kes(pricing.pricePerLiter) + " a liter · from " + kes(pricing.minAmount) + " to " + kes(pricing.maxAmount)
    );
  }

  function unpaired(message) {
    stored(null);
    state.key = null;
    state.station = null;
    say("station-name", "Water station");
    warn("pair-message", message);
    toIdle();
  }

  async function pair() {
    var candidate = $("pair-key").value.trim();
    if (candidate.indexOf("wsk_") !== 0) {
      warn("pair-message", "That is not a station key: a station key starts with wsk_.");
      return;
    }
    say("pair-message", "Checking the key…");
    var url = URLS.whoami + "?stationId=" + encodeURIComponent(STATION);
    var answer = await api("GET", url, null, { key: candidate });
    if (answer.status === 200) {
      state.key = stored(candidate) || candidate;
      known(answer.body.data);
      $("pair-key").value = "";
      say("pair-message", "");
      toIdle();
    } else if (answer.status === 403) {
      warn("pair-message", (answer.body.message || "This key belongs to another station") + ", not " + STATION +
        ". Enter the key of " + STATION + ".");
    } else if (answer.status === 401) {
      warn("pair-message", "This key does not work: check it, or rotate the station's key in the portal and use the new one.");
    } else if (answer.status === 0) {
      warn("pair-message", "The kiosk cannot reach the server. Check its network and try again.");
    } else {
      warn("pair-message", "The key could not be checked: " + (answer.body.message || "error " + answer.status) + ".");
    }
  }

  async function startUp() {
    state.key = stored();
    if (!state.key) {
      toIdle();
      return;
    }
    var answer = await api("GET", URLS.whoami + "?stationId=" + encodeURIComponent(STATION));
    if (answer.status === 200) known(answer.body.data);
    else if (answer.status === 403 || answer.status === 404) unpaired(answer.body.message + ". Pair this kiosk again.");
    if (state.key) toIdle();
  }

  function unpair() {
    unpaired("");
    say("pair-message", "Unpaired: this device forgot the key. Enter a station key to pair it again.");
  }

  // -- a sale -------------------------------------------------------------------------------
  function begin(firstDigit) {
    toIdle();
    show("phone");
    if (firstDigit) press($("phone-input"), firstDigit);
  }

  function phoneEntered() {
    var digits = $("phone-input").value;
    if (!/^(?:0|254)[17]\d{8}$/.test(digits)) {
      warn("phone-message", "Enter your Safaricom number, for example 0712 345 678.");
      return;
    }
    state.phone = digits;
    say("phone-message", "");
    show("amount");
  }

  async function amountEntered() {
    var amount = parseInt($("amount-input").value, 10);
    if (!(amount > 0)) {
      warn("amount-message", "Enter the amount in shillings.");
      return;
    }
    say("amount-message", "Working out the liters…");
    var answer = await api("POST", URLS.preview, { amount: amount });
    if (answer.status === 200) {
      say("amount-message", "");
      showPreview(answer.body.data);
    } else {
      warn("amount-message", answer.status ? answer.body.message : "The kiosk cannot reach the server. Try again.");
    }
  }

  function showPreview(sale) {
    state.sale = { amount: sale.amount, liters: sale.liters };
    say("preview-title", kes(sale.amount) + " → " + litersWord(sale.liters));
    var rounding = "";
    if (sale.difference !== 0) {
      rounding =
        kes(Math.abs(sale.difference)) + (sale.difference < 0 ? " less" : " more") + " than the " +
        kes(sale.requestedAmount) + " you entered: water is sold in whole liters, " +
        kes(sale.pricePerLiter) + " a liter.";
    }
    say("preview-rounding", rounding);
    say("preview-phone", spacedPhone(state.phone));
    say("pay", "Pay " + kes(sale.amount) + " with M-Pesa");
    say("preview-message", "");
    show("preview");
  }

  async function pay() {
    var sale = state.sale;
    say("preview-message", "Sending the request to M-Pesa…");
    var answer = await api("POST", URLS.initiate, {
      phoneNumber: state.phone,
      amount: sale.amount,
      metadata: { kiosk: STATION },
    });
    if (answer.status === 201) {
      sale.reference = answer.body.data.transactionReference;
      return waitForPayment();
    }
    var inFlight = answer.status === 504 && /WS-\d+-[A-Z0-9]+/.exec(answer.body.message || "");
    if (inFlight) {
      sale.reference = inFlight[0]; // M-Pesa was slow, not refused: the payment settles when it reports
      return waitForPayment();
    }
    var fields = (answer.body.errors || []).map(function (problem) {
      return problem.field;
    });
    if (answer.status === 400 && fields.indexOf("phoneNumber") >= 0) {
      show("phone");
      warn("phone-message", answer.body.message);
    } else if (answer.status === 400) {
      show("amount");
      warn("amount-message", answer.body.message);
    } else if (answer.status === 0) {
      warn("preview-message", "The kiosk cannot reach the server. Try again.");
    } else {
      notice("Payment not started", answer.body.message || "M-Pesa could not take the request.",
        "Nothing was charged. Please try again in a moment.");
    }
  }

  async function waitForPayment() {
    var sale = state.sale;
    say("paying-text", "M-Pesa is asking " + spacedPhone(state.phone) + " to pay " + kes(sale.amount) + " for " +
      litersWord(sale.liters) + ".");
    say("paying-status", "Waiting for M-Pesa…");
    show("paying");
    var url = URLS.status.replace(PLACEHOLDER, encodeURIComponent(sale.reference));
    for (var i = 0; i < POLLS.length; i++) {
      await sleep(POLLS[i] * 1000);
      if (state.sale !== sale) return;
      var answer = await api("GET", url);
      if (answer.status !== 200) continue; // not heard this time: ask again at the next look
      var payment = answer.body.data;
      if (payment.status === "completed") {
        sale.receipt = payment.mpesaReceiptNumber;
        return askCode();
      }
      if (ENDED[payment.status]) return paymentEnded(payment);
    }
    notice("No answer from M-Pesa", "M-Pesa has not told us whether you paid.",
      "If money left your account, show your M-Pesa message to the attendant" + merchant(" or ") +
        ". Reference " + sale.reference + ".");
  }

  function paymentEnded(payment) {
    var nothing = "Nothing was charged.";
    if (payment.status === "cancelled") {
      notice("Payment cancelled", "The M-Pesa request was cancelled on your phone. " + nothing, "Tap OK to start again.");
    } else if (payment.status === "timeout") {
      notice("No answer from your phone", "M-Pesa could not reach your phone in time. " + nothing, "Please try again.");
    } else if (String(payment.resultCode) === "1") {
      notice("Payment failed", "Your M-Pesa balance is too low for this amount. " + nothing, "Try a smaller amount.");
    } else if (String(payment.resultCode) === "2001") {
      notice("Payment failed", "The M-Pesa PIN was wrong. " + nothing, "Please try again.");
    } else {
      notice("Payment failed", (payment.resultDesc || "M-Pesa refused the payment.") + " " + nothing,
        "Please try again.");
    }
  }

  function askCode() {
    state.sale.codeExpires = Date.now() + CODE_MS;
    say("otp-label", "Enter the 6-digit code sent to " + maskedPhone(state.phone));
    say("otp-message", "The code comes by SMS in a moment.");
    $("otp-input").value = "";
    show("otp");
  }

  var REFUSED = {
    OTP_BLOCKED: ["Code blocked", "Too many wrong codes: this code is blocked.", "a new code"],
    OTP_EXPIRED: ["Code expired", "This code was not used in time, so it has expired.", "a new code"],
    OTP_ALREADY_USED: ["Code already used", "This code has already dispensed its water.", "help"],
    OTP_LOCKED_TO_STATION: ["Code locked to another station", "This code was used at another station.", "help"],
    OTP_IN_USE: ["Code locked to another station", "This code is in use at another station right now.", "help"],
  };

  function codeExpired() {
    state.flow += 1; // a code being checked right now is answered to nobody
    var expired = REFUSED.OTP_EXPIRED;
    notice(expired[0], expired[1], askFor(expired[2]));
  }

  async function codeEntered() {
    var input = $("otp-input");
    var code = input.value;
    if (!/^\d{6}$/.test(code)) {
      warn("otp-message", "The code has 6 digits.");
      return;
    }
    say("otp-message", "Checking the code…");
    var sale = state.sale;
    var answer = await api("POST", URLS.verify, { transactionReference: sale.reference, otp: code });
    if (answer.status === 200) return dispense(answer.body.data);
    input.value = "";
    var error = answer.body.error;
    var refused = REFUSED[error];
    if (error === "INVALID_OTP") {
      var left = /(\d+) attempts? remaining/.exec(answer.body.message || "");
      warn("otp-message", left ? "Wrong code — " + left[1] + (left[1] === "1" ? " attempt" : " attempts") + " left"
        : "Wrong code — try again");
    } else if (error === "OTP_NOT_FOUND") {
      warn("otp-message", "Your code is not ready yet: wait for the SMS, then enter it.");
    } else if (refused) {
      notice(refused[0], refused[1], askFor(refused[2]));
    } else {
      warn("otp-message", answer.status ? answer.body.message : "The kiosk cannot reach the server. Try again.");
    }
    input.focus();
  }

  // There is no flow meter in the sandbox: the kiosk counts the pulses a meter would send at
  // KIOSK_FLOW_LITERS_PER_SECOND, and says the dispense is complete when they are all counted.
  function dispense(grant) {
    var flow = state.flow;
    var total = grant.liters;
    var pulses = grant.pulses;
    var perSecond = (FLOW * pulses) / total;
    var progress = $("dispensing-progress");
    progress.max = pulses;
    progress.value = 0;
    say("dispensing-title", "Dispensing " + total + " L");
    show("dispensing");
    var started = performance.now();
    (function tick() {
      if (flow !== state.flow) return;
      var counted = Math.min(pulses, Math.floor(((performance.now() - started) / 1000) * perSecond));
      progress.value = counted;
      var poured = counted >= pulses ? String(total) : ((counted * total) / pulses).toFixed(1);
      say("dispensing-count", poured + " L of " + total + " L");
      if (counted >= pulses) {
        step(function () {
          return finish(grant);
        })();
      } else {
        setTimeout(tick, 100);
      }
    })();
  }

  async function finish(grant) {
    for (var attempt = 1; attempt <= 3; attempt++) {
      var answer = await api("POST", URLS.complete, { transactionReference: grant.transactionReference });
      if (answer.status && answer.status < 500) break; // done, or a refusal that asking again will not change
      await sleep(2000 * attempt);
    }
    // The water has run either way: if the server never heard, it takes the code as used after
    // OTP_DISPENSE_TIMEOUT.
    say("thanks-text", "Enjoy your " + grant.liters + " L of water.");
    closing("thanks");
  }

  // -- keypads and keys -----------------------------------------------------------------------
  function press(input, key) {
    if (key === "Backspace") input.value = input.value.slice(0, -1);
    else if (input.value.length < input.maxLength) input.value += key;
    touched();
  }

  document.querySelectorAll(".entry-value").forEach(function (input) {
    input.addEventListener("input", function () {
      var digits = input.value.replace(/\D/g, "").slice(0, input.maxLength);
      if (digits !== input.value) input.value = digits;
      touched();
    });
  });

  // A touched key keeps the focus in its field, so a physical keyboard goes on typing there.
  document.addEventListener("mousedown", function (event) {
    if (event.target.closest(".key[data-key]")) event.preventDefault();
  });

  var ACTIONS = {
    cancel: toIdle,
    idle: toIdle,
    "back-to-phone": function () {
      show("phone");
    },
    "back-to-amount": function () {
      show("amount");
    },
  };

  document.addEventListener("click", function (event) {
    var key = event.target.closest("[data-key]");
    if (key) {
      press(key.closest("form").querySelector(".entry-value"), key.dataset.key);
      return;
    }
    var action = event.target.closest("[data-action]");
    if (action) ACTIONS[action.dataset.action]();
  });

  document.addEventListener("keydown", function (event) {
    touched();
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var screen = state.screen;
    if (event.key === "Escape") {
      if (WAITING_FOR_TOUCH[screen] || screen === "thanks" || screen === "notice") {
        event.preventDefault();
        toIdle();
      }
      return;
    }
    var digit = /^[0-9]$/.test(event.key);
    if (screen === "idle" && digit) {
      event.preventDefault();
      begin(event.key);
      return;
    }
    var input = document.querySelector("#screen-" + screen + " .entry-value");
    if (input && event.target !== input && (digit || event.key === "Backspace")) {
      event.preventDefault();
      input.focus();
      press(input, event.key);
    }
  });

  $("pair-form").addEventListener("submit", step(pair));
  $("start").addEventListener("click", function () {
    begin();
  });
  $("unpair-open").addEventListener("click", function () {
    show("unpair");
  });
  $("unpair-confirm").addEventListener("click", unpair);
  $("phone-form").addEventListener("submit", function (event) {
    event.preventDefault();
    phoneEntered();
  });
  $("amount-form").addEventListener("submit", step(amountEntered));
  $("pay").addEventListener("click", step(pay));
  $("otp-form").addEventListener("submit", step(codeEntered));

  step(startUp)();
})();
