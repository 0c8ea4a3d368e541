// Course titles and codes as a student types, offered in the search box's <datalist>.
// The page works the same without this script: the form submits a plain GET search.
(function () {
  "use strict";
  var input = document.getElementById("q");
  var list = document.getElementById("q-suggestions");
  if (!input || !list || !window.fetch) { return; }
  var url = input.getAttribute("data-suggest");
  var lang = input.getAttribute("data-lang") || "en";
  var timer = null;
  var asked = "";

  function title(t) { return t[lang] || t["zh-Hans"] || t.en || Object.values(t)[0] || ""; }

  function show(items) {
    var seen = {};
    list.textContent = "";
    items.forEach(function (s) {
      [title(s.title), s.code].forEach(function (value) {
        if (!value || seen[value]) { return; }
        seen[value] = true;
        var option = document.createElement("option");
        option.value = value;
        option.label = value === s.code ? title(s.title) : s.code;
        list.appendChild(option);
      });
    });
  }

  input.addEventListener("input", function () {
    clearTimeout(timer);
    var q = input.value.trim();
    if (q.length < 2) { list.textContent = ""; return; }
    timer = setTimeout(function () {
      asked = q;
      fetch(url + "?" + new URLSearchParams({q: q, limit: "8"}), {headers: {Accept: "application/json"}})
        .then(function (r) { return r.ok ? r.json() : {suggestions: []}; })
        .then(function (body) { if (asked === q) { show(body.suggestions || []); } })
        .catch(function () { /* no suggestions: the search itself still works */ });
    }, 150);
  });
}());
