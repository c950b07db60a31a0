// paperbell's pages work without this file; with it the time zone is filled in from the
// browser, the query syntax help opens in place, and the query is previewed as you type.
// No user text is ever put in as HTML: only textContent and createElement.
"use strict";
(function () {
  function fillTimezone() {
    var input = document.getElementById("timezone");
    if (!input || !window.Intl) return;
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && (input.value === "" || input.value === "UTC") && !input.dataset.touched) {
      input.value = zone;
    }
    input.addEventListener("input", function () { input.dataset.touched = "1"; });
  }

  function openHelp() {
    var link = document.getElementById("syntax-link");
    var help = document.getElementById("syntax");
    if (!link || !help) return;
    link.addEventListener("click", function () { help.open = true; });
  }

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  function showPreview(box, data) {
    box.replaceChildren();
    if (data.error) {
      box.appendChild(el("p", data.error, "field-error"));
      return;
    }
    box.appendChild(el("h2", "How paperbell understood it"));
    var p = el("p");
    p.appendChild(el("code", data.normalized));
    box.appendChild(p);
    box.appendChild(el("p", data.count + " of " + data.total + " papers of the last " +
      data.days + " days (" + (data.share * 100).toFixed(1) + " %, about " +
      data.per_day.toFixed(1) + " a day)." + (data.too_many ? " That is a lot of mail: try a narrower query." : "")));
    if (!data.top.length) return;
    box.appendChild(el("h3", "Recent matches"));
    var list = el("ul", "", "papers");
    data.top.forEach(function (hit) {
      var li = el("li");
      if (hit.url && /^https?:\/\//.test(hit.url)) {
        var a = el("a", hit.title);
        a.href = hit.url;
        li.appendChild(a);
      } else {
        li.appendChild(document.createTextNode(hit.title));
      }
      li.appendChild(el("span", "matched: " + hit.words.join(", "), "words"));
      list.appendChild(li);
    });
    box.appendChild(list);
  }

  // Every query field marked data-preview previews into #preview as you type.
  function livePreview() {
    var box = document.getElementById("preview");
    var inputs = document.querySelectorAll("input[data-preview]");
    if (!box || !inputs.length || !window.fetch) return;
    var timer = null, last = "";
    function run(input) {
      var query = input.value.trim();
      if (query === last) return;
      last = query;
      if (!query) { box.replaceChildren(); return; }
      fetch("/preview.json?query=" + encodeURIComponent(query), { headers: { Accept: "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (data) { if (input.value.trim() === query) showPreview(box, data); })
        .catch(function () {});
    }
    inputs.forEach(function (input) {
      input.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(function () { run(input); }, 350);
      });
    });
  }

  fillTimezone();
  openHelp();
  livePreview();
})();
