/* The helpline's chat launcher for any page of the helpline's site:

     <script src="https://HELPLINE-SERVER/chat/widget.js" defer
             data-label="Chat with us" data-colour="#1d4f91" data-text-colour="#ffffff"
             data-position="right"></script>

   It adds a button; the button opens the chat (served by the helpline's server, in a
   frame) in a panel. The host page must be listed in HELPLINE_WEB_ORIGINS. Nothing is
   loaded from anyone else. "Leave this site" (or Shift three times) in the chat, or
   Shift three times on this page while the chat is open, replaces this page at once. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.src) { return; }
  var base = new URL(script.src).origin;
  var d = script.dataset;
  var label = d.label || "Chat with the helpline";
  var closeLabel = d.closeLabel || "Close chat";
  var colour = d.colour || d.color || "#1d4f91";
  var ink = d.textColour || d.textColor || "#ffffff";
  var side = d.position === "left" ? "left" : "right";
  var shifts = [];

  function styled(element, styles) {
    Object.keys(styles).forEach(function (k) { element.style[k] = styles[k]; });
    return element;
  }

  var launcher = styled(document.createElement("button"), {
    position: "fixed", bottom: "1rem", zIndex: "2147483000", padding: "0.75rem 1.25rem",
    minHeight: "2.75rem", border: "2px solid " + ink, borderRadius: "2rem", background: colour,
    color: ink, font: "inherit", fontWeight: "700", cursor: "pointer",
    boxShadow: "0 2px 6px rgba(0,0,0,0.3)"
  });
  launcher.style[side] = "1rem";
  launcher.type = "button";
  launcher.textContent = label;
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-controls", "helpline-chat-panel");
  launcher.className = "helpline-chat-launcher";

  var panel = styled(document.createElement("div"), {
    position: "fixed", bottom: "4.5rem", zIndex: "2147483000", width: "min(26rem, calc(100vw - 1rem))",
    height: "min(40rem, calc(100vh - 6rem))", background: "#ffffff", border: "2px solid " + colour,
    borderRadius: "0.75rem", overflow: "hidden", display: "none", flexDirection: "column",
    boxShadow: "0 4px 16px rgba(0,0,0,0.3)"
  });
  panel.style[side] = "0.5rem";
  panel.id = "helpline-chat-panel";
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", label);

  var close = styled(document.createElement("button"), {
    alignSelf: "flex-end", margin: "0.25rem", minHeight: "2.75rem", padding: "0.25rem 0.75rem",
    border: "2px solid " + colour, borderRadius: "0.375rem", background: "#ffffff", color: "#0b0c0c",
    font: "inherit", cursor: "pointer"
  });
  close.type = "button";
  close.textContent = closeLabel;

  var frame = null;

  function open() {
    if (!frame) {
      frame = styled(document.createElement("iframe"), { flex: "1", width: "100%", border: "0" });
      frame.title = label;
      frame.src = base + "/chat?embed=1";
      frame.setAttribute("referrerpolicy", "no-referrer");
      panel.appendChild(frame);
    }
    panel.style.display = "flex";
    launcher.setAttribute("aria-expanded", "true");
    frame.focus();
  }
  function hide() {
    panel.style.display = "none";
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }
  function leave(url) {
    document.body.style.visibility = "hidden";
    if (frame && frame.parentNode) { frame.parentNode.removeChild(frame); }
    location.replace(/^https?:\/\//.test(url || "") ? url : "https://www.bbc.co.uk/weather");
  }

  launcher.addEventListener("click", function () {
    if (panel.style.display === "none") { open(); } else { hide(); }
  });
  close.addEventListener("click", hide);
  panel.addEventListener("keydown", function (event) { if (event.key === "Escape") { hide(); } });
  window.addEventListener("message", function (event) {
    if (event.origin === base && event.data && event.data.type === "helpline-exit") {
      leave(event.data.url);
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Shift" || event.repeat || !frame || panel.style.display === "none") { return; }
    var now = Date.now();
    shifts = shifts.filter(function (t) { return now - t < 5000; });
    shifts.push(now);
    if (shifts.length >= 3) {
      // The chat clears what it kept and ends its session, then asks this page to go.
      frame.contentWindow.postMessage({ type: "helpline-exit-request" }, base);
    }
  });

  panel.appendChild(close);
  function mount() {
    document.body.appendChild(launcher);
    document.body.appendChild(panel);
  }
  if (document.body) { mount(); } else { document.addEventListener("DOMContentLoaded", mount); }
})();
