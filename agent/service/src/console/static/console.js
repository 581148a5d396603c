// drover console: progressive enhancement. Without this script every page
// works (forms post and redirect; reload to refresh). With it:
// - a part marked data-live="URL" is replaced by what the server-sent event
//   stream at URL sends (event "update"), but never while a field in it is
//   being filled in (the update waits until the field is left);
// - a form inside such a part is posted in the background: the page is not
//   reloaded, the stream shows what the action changed, an error is shown
//   above the part.
"use strict";
(function () {
  function busy(el) {
    var a = document.activeElement;
    if (a && el.contains(a) && (a.tagName === "INPUT" || a.tagName === "SELECT" || a.tagName === "TEXTAREA")) return true;
    return Array.prototype.some.call(el.querySelectorAll("input[type=text]"), function (i) { return i.value !== ""; });
  }
  function notice(el, text) {
    var n = el.previousElementSibling;
    if (!n || !n.classList.contains("notice")) {
      n = document.createElement("p");
      n.className = "notice";
      n.setAttribute("role", "alert");
      el.parentNode.insertBefore(n, el);
    }
    n.textContent = text;
  }
  document.querySelectorAll("[data-live]").forEach(function (el) {
    var pending = null;
    var es = new EventSource(el.getAttribute("data-live"));
    es.addEventListener("update", function (ev) {
      pending = ev.data;
      if (!busy(el)) { el.innerHTML = pending; pending = null; }
    });
    setInterval(function () {
      if (pending !== null && !busy(el)) { el.innerHTML = pending; pending = null; }
    }, 500);
    el.addEventListener("submit", function (ev) {
      var form = ev.target;
      ev.preventDefault();
      var body = new URLSearchParams(new FormData(form));
      fetch(form.action, { method: "POST", body: body, credentials: "same-origin" }).then(function (r) {
        if (r.ok) {
          form.querySelectorAll("input[type=text]").forEach(function (i) { i.value = ""; });
          notice(el, "Done: " + (form.querySelector("button") || {}).textContent);
          return;
        }
        return r.text().then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var msg = doc.querySelector(".error");
          notice(el, "Refused (" + r.status + "): " + (msg ? msg.textContent : r.statusText));
        });
      }).catch(function () { form.submit(); });
    });
  });
})();
