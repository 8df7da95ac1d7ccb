/* The helpline's web chat (see bot/web/PROTOCOL.md). No framework, no build step, no
   request to anyone but this server. Everything from the server is shown as text. */
(function () {
  "use strict";

  var body = document.body;
  var words = body.dataset;
  var embedded = words.embedded === "true";
  var exitUrl = /^https?:\/\//.test(words.exitUrl || "") ? words.exitUrl : "https://www.bbc.co.uk/weather";
  var log = document.getElementById("log");
  var choices = document.getElementById("choices");
  var notice = document.getElementById("notice");
  var statusLine = document.getElementById("status");
  var form = document.getElementById("composer");
  var box = document.getElementById("message");
  var keep = document.getElementById("keep");
  var erase = document.getElementById("erase");
  var TOKEN = "helpline.chat.token";
  var KEPT = "helpline.chat.kept";
  var LINK = /https?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;

  var socket = null;
  var ready = false;      // the server has answered hello
  var lastSeq = 0;
  var pending = [];       // frames sent but not acknowledged, resent after a reconnect
  var retry = 500;
  var ended = false;
  var shifts = [];

  if (embedded) { body.classList.add("embedded"); }

  // Where the token lives: this tab only, unless the enquirer chose to keep the chat.
  function kept() {
    try { return localStorage.getItem(KEPT) === "1"; } catch (e) { return false; }
  }
  function store() { return kept() ? localStorage : sessionStorage; }
  function token() {
    try { return store().getItem(TOKEN); } catch (e) { return null; }
  }
  function saveToken(value) {
    try { store().setItem(TOKEN, value); } catch (e) { /* private mode: this page only */ }
  }
  keep.checked = kept();
  keep.addEventListener("change", function () {
    var current = token();
    try {
      if (keep.checked) {
        localStorage.setItem(KEPT, "1");
        if (current) { localStorage.setItem(TOKEN, current); }
        sessionStorage.removeItem(TOKEN);
      } else {
        localStorage.removeItem(KEPT);
        localStorage.removeItem(TOKEN);
        if (current) { sessionStorage.setItem(TOKEN, current); }
      }
    } catch (e) { /* storage refused: nothing kept */ }
  });

  function newId() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  // Drawing -----------------------------------------------------------------------------

  function textWithLinks(element, text, linked) {
    if (!linked) { element.appendChild(document.createTextNode(text)); return; }
    var at = 0;
    text.replace(LINK, function (url, offset) {
      element.appendChild(document.createTextNode(text.slice(at, offset)));
      var a = document.createElement("a");
      a.href = url;            // only http(s), by the pattern
      a.rel = "noopener noreferrer";
      a.target = "_blank";
      a.textContent = url;
      element.appendChild(a);
      at = offset + url.length;
      return url;
    });
    element.appendChild(document.createTextNode(text.slice(at)));
  }

  function addMessage(message) {
    var from = message.from === "you" || message.from === "practitioner" ? message.from : "bot";
    var item = document.createElement("div");
    item.className = "msg " + from;
    item.id = "m" + message.seq;
    var who = document.createElement("span");
    who.className = "who";
    who.textContent = from === "you" ? words.you : from === "practitioner" ? words.practitioner : words.helpline;
    item.appendChild(who);
    textWithLinks(item, String(message.text || ""), from !== "you");
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  function button(label, onPress) {
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.addEventListener("click", onPress);
    return b;
  }

  function showChoices(message) {
    var active = document.activeElement;
    // Keyboard users carry on where the answer is (after "Delete what I told you", its question).
    var hadFocus = !active || active === body || active === erase || choices.contains(active);
    choices.textContent = "";
    var options = Array.isArray(message.options) ? message.options : [];
    if (!options.length && !message.back) {
      choices.hidden = true;
      if (hadFocus && message.from === "bot") { box.focus(); }
      return;
    }
    var question = message.question || null;
    options.forEach(function (option) {
      var b = button(String(option.label), function () {
        send({ type: message.multiple ? "toggle" : "choose", option: String(option.id), question: question });
      });
      if (message.multiple) { b.setAttribute("aria-pressed", option.selected ? "true" : "false"); }
      choices.appendChild(b);
    });
    if (message.multiple) {
      var done = button(words.done, function () { send({ type: "done", question: question }); });
      done.className = "primary";
      choices.appendChild(done);
    }
    if (message.back) {
      var back = button(words.back, function () {
        send({ type: "command", command: "back", question: question });
      });
      back.className = "secondary";
      choices.appendChild(back);
    }
    choices.setAttribute("aria-labelledby", "m" + message.seq);
    choices.hidden = false;
    // The first option (or the textbox).
    if (hadFocus) {
      var first = options.length ? choices.firstElementChild : box;
      if (first) { first.focus(); }
    }
  }

  function onMessage(message) {
    if (typeof message.seq !== "number" || message.seq <= lastSeq) { return; } // seen: a resend
    lastSeq = message.seq;
    if (message.update) {
      // A tick redraws the question's buttons in place; the question itself is already shown.
      var focused = document.activeElement && choices.contains(document.activeElement)
        ? Array.prototype.indexOf.call(choices.children, document.activeElement) : -1;
      var asked = choices.getAttribute("aria-labelledby");
      showChoices(message);
      if (asked) { choices.setAttribute("aria-labelledby", asked); }
      if (focused >= 0 && choices.children[focused]) { choices.children[focused].focus(); }
      return;
    }
    addMessage(message);
    if (message.from === "bot" && (message.question || (message.options && message.options.length))) {
      showChoices(message);
    } else if (message.from === "bot") {
      var inChoices = choices.contains(document.activeElement);
      choices.hidden = true;
      choices.textContent = "";
      if (inChoices) { box.focus(); }
    }
  }

  function say(text) {
    notice.textContent = text;
    notice.hidden = !text;
  }

  // The socket ------------------------------------------------------------------------

  function address() {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/chat/socket";
  }

  function connect() {
    if (ended) { return; }
    var ws = new WebSocket(address());
    socket = ws;
    ws.addEventListener("open", function () {
      retry = 500;
      ws.send(JSON.stringify({ type: "hello", token: token(), after: lastSeq }));
    });
    ws.addEventListener("message", function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (!frame || typeof frame !== "object") { return; }
      if (frame.type === "welcome") {
        if (frame.token) { saveToken(frame.token); }
        if (frame.reset) { log.textContent = ""; lastSeq = 0; pending = []; showChoices({}); }
        statusLine.textContent = words.connected;
        ready = true;
        pending.forEach(function (f) { ws.send(JSON.stringify(f)); });
      } else if (frame.type === "message") {
        onMessage(frame);
      } else if (frame.type === "ack") {
        pending = pending.filter(function (f) { return f.id !== frame.id; });
      } else if (frame.type === "notice") {
        say(String(frame.text || ""));
        if (frame.id && frame.retry) {
          setTimeout(function () { resend(frame.id); }, 2000);
        } else if (frame.id) {
          pending = pending.filter(function (f) { return f.id !== frame.id; });
        }
      } else if (frame.type === "forgotten") {
        // The conversation was deleted: what the enquirer wrote goes from the page too
        // (after an erasure, everything the chat showed: the summary quoted them). It is
        // numbered like a message, so every tab on the chat gets it, once.
        if (typeof frame.seq !== "number" || frame.seq <= lastSeq) { return; }
        lastSeq = frame.seq;
        Array.prototype.forEach.call(log.querySelectorAll(frame.all ? ".msg" : ".msg.you"), function (item) {
          var who = item.firstChild;
          item.textContent = "";
          item.appendChild(who);
          item.appendChild(document.createTextNode(String(frame.text || "")));
        });
      } else if (frame.type === "ended") {
        finish();
      }
    });
    ws.addEventListener("close", function () {
      if (socket !== ws || ended) { return; }
      socket = null;
      ready = false;
      statusLine.textContent = words.reconnecting;
      var wait = retry + Math.floor(Math.random() * 250);
      retry = Math.min(retry * 2, 10000);
      setTimeout(connect, wait);
    });
  }

  function send(frame) {
    if (ended) { return; }
    frame.id = newId();
    pending.push(frame);
    say("");
    if (ready && socket && socket.readyState === WebSocket.OPEN) { socket.send(JSON.stringify(frame)); }
  }

  function resend(id) {
    pending.forEach(function (f) {
      if (f.id === id && ready && socket) { socket.send(JSON.stringify(f)); }
    });
  }

  function finish() {
    ended = true;
    statusLine.textContent = words.ended;
    forget();
  }

  function forget() {
    try { sessionStorage.clear(); } catch (e) { /* nothing kept */ }
    try { localStorage.clear(); } catch (e) { /* nothing kept */ }
  }

  // Typing, pasting, dropping ---------------------------------------------------------

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = box.value.trim();
    if (!text) { return; }
    if (text.length > 4000) { say(words.tooLong); return; }
    send({ type: "say", text: text });
    box.value = "";
  });
  box.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  function hasFiles(data) {
    if (!data) { return false; }
    if (data.files && data.files.length) { return true; }
    return Array.prototype.some.call(data.items || [], function (item) { return item.kind === "file"; });
  }
  // A picture pasted or dropped never leaves the browser: it is refused here, with why.
  box.addEventListener("paste", function (event) {
    if (hasFiles(event.clipboardData)) { event.preventDefault(); say(words.attachment); }
  });
  document.addEventListener("dragover", function (event) {
    if (hasFiles(event.dataTransfer)) { event.preventDefault(); }
  });
  document.addEventListener("drop", function (event) {
    if (hasFiles(event.dataTransfer)) { event.preventDefault(); say(words.attachment); }
  });
  document.getElementById("restart").addEventListener("click", function () {
    send({ type: "command", command: "restart" });
  });
  // Erasure on request: the server asks to confirm (Yes, delete / No, keep it) first.
  erase.addEventListener("click", function () {
    send({ type: "command", command: "delete" });
  });

  // Quick exit: the page goes at once, the browser forgets the chat, the server ends it.

  function quickExit() {
    var current = token();
    body.classList.add("leaving");
    document.title = "";
    if (current && navigator.sendBeacon) {
      navigator.sendBeacon("/chat/exit", new Blob([current], { type: "text/plain" }));
    }
    if (socket && socket.readyState === WebSocket.OPEN) {
      try { socket.send(JSON.stringify({ type: "exit" })); } catch (e) { /* the beacon ends it */ }
    }
    ended = true;
    forget();
    log.textContent = "";
    if (embedded && window.parent !== window) {
      window.parent.postMessage({ type: "helpline-exit", url: exitUrl }, "*");
    }
    location.replace(exitUrl);
  }
  document.getElementById("exit").addEventListener("click", quickExit);
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Shift" || event.repeat) { return; }
    var now = Date.now();
    shifts = shifts.filter(function (t) { return now - t < 5000; });
    shifts.push(now);
    if (shifts.length >= 3) { quickExit(); }
  });
  window.addEventListener("message", function (event) {
    if (event.source === window.parent && event.data && event.data.type === "helpline-exit-request") {
      quickExit();
    }
  });
  // Back from another page via the back/forward cache: nothing of the chat is shown again.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted && ended) { location.replace(exitUrl); }
  });

  statusLine.textContent = words.connecting;
  connect();
})();
