// dlq console: live list, selection, keyboard, redrive progress. Every
// page works without this script; it only saves reloads.
(function () {
  "use strict";
  var rows = document.getElementById("rows");
  var all = document.getElementById("all");
  var count = document.getElementById("count");

  function boxes() { return rows ? rows.querySelectorAll('input[name="pos"]:not(:disabled)') : []; }
  function checked() { return rows ? rows.querySelectorAll('input[name="pos"]:checked') : []; }
  function updateCount() { if (count) count.textContent = checked().length + " selected"; }
  if (rows) rows.addEventListener("change", updateCount);
  if (all) all.addEventListener("change", function () {
    boxes().forEach(function (b) { b.checked = all.checked; });
    updateCount();
  });

  // Live updates: poll the topic's watermark; when letters arrive, fetch
  // the rows again for the same filters and keep what was selected.
  var live = document.getElementById("live");
  if (live && rows) {
    var mark = live.getAttribute("data-watermark");
    setInterval(function () {
      fetch("/watermark", { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (j) {
        if (String(j.watermark) === mark) return;
        mark = String(j.watermark);
        var keep = {};
        checked().forEach(function (b) { keep[b.value] = true; });
        fetch("/rows" + location.search, { credentials: "same-origin" }).then(function (r) { return r.text(); }).then(function (html) {
          rows.innerHTML = html;
          boxes().forEach(function (b) { if (keep[b.value]) b.checked = true; });
          updateCount();
          live.textContent = "New dead letters arrived at " + new Date().toLocaleTimeString() + ".";
        });
      }).catch(function () {});
    }, 2000);
  }

  // Keyboard: / filter, j/k move, x select, Enter open, g list.
  var cursor = -1;
  function lines() { return rows ? rows.querySelectorAll("tr[data-pos]") : []; }
  function move(d) {
    var ls = lines(); if (!ls.length) return;
    if (cursor >= 0 && ls[cursor]) ls[cursor].classList.remove("cursor");
    cursor = Math.max(0, Math.min(ls.length - 1, cursor + d));
    ls[cursor].classList.add("cursor");
    ls[cursor].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (e) {
    var t = e.target.tagName;
    if (t === "INPUT" || t === "TEXTAREA" || t === "SELECT" || e.ctrlKey || e.metaKey || e.altKey) return;
    var ls = lines();
    if (e.key === "/") { var s = document.getElementById("search"); if (s) { e.preventDefault(); s.focus(); } }
    else if (e.key === "j") move(1);
    else if (e.key === "k") move(-1);
    else if (e.key === "x" && ls[cursor]) { var b = ls[cursor].querySelector('input[name="pos"]'); if (b && !b.disabled) { b.checked = !b.checked; updateCount(); } }
    else if (e.key === "Enter" && ls[cursor]) { var a = ls[cursor].querySelector("a"); if (a) location.href = a.href; }
    else if (e.key === "g") location.href = "/";
  });

  // Redrive progress.
  var job = document.getElementById("job");
  if (job && job.getAttribute("data-finished") !== "true") {
    var bar = document.getElementById("bar"), status = document.getElementById("status");
    var timer = setInterval(function () {
      fetch("/jobs/" + job.getAttribute("data-id") + "/progress", { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (p) {
        bar.max = p.total; bar.value = p.done;
        if (p.finished) {
          clearInterval(timer);
          job.setAttribute("data-finished", "true");
          status.textContent = "Finished: " + p.redriven + " redriven, " + p.refused + " refused" + (p.error ? "; stopped: " + p.error : "") + ".";
        } else {
          status.textContent = p.done + " of " + p.total + " done (" + p.redriven + " redriven, " + p.refused + " refused), " + Math.round(p.recordsPerSecond) + " records/s…";
        }
      }).catch(function () {});
    }, 500);
  }
})();
