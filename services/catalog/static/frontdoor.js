// The front door's only script; every page works without it.
// A form marked data-autosubmit (signing out at the identity provider) is sent at once.
// "My requests" (an element with data-live) follows its statuses without a reload: it asks the
// front door's JSON endpoint every few seconds and replaces the list when its signature changed.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.querySelector("form[data-autosubmit]");
  if (form) { form.submit(); }

  var live = document.querySelector("[data-live]");
  if (!live || !window.fetch) { return; }
  var busy = false;
  function refresh() {
    if (busy || document.hidden) { return; }
    busy = true;
    fetch(live.getAttribute("data-live"), {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data || data.signature === live.getAttribute("data-signature")) { return; }
        // keep the keyboard focus on the same control when the list is redrawn
        var focused = live.contains(document.activeElement) ? document.activeElement.closest("form") : null;
        var action = focused ? focused.getAttribute("action") : null;
        live.innerHTML = data.html;
        live.setAttribute("data-signature", data.signature);
        if (action) {
          var again = live.querySelector('form[action="' + action + '"] button');
          if (again) { again.focus(); }
        }
      })
      .catch(function () { /* the next round tries again */ })
      .then(function () { busy = false; });
  }
  window.setInterval(refresh, 3000);
});
