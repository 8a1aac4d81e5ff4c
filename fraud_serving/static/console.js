// The review console's keyboard shortcuts and row clicks; the pages work without it.
// Queue: j / k move, o or Enter opens, x selects. Order page: f fraud, l legitimate, u back.
(function () {
  "use strict";
  function typing(event) {
    var t = event.target;
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  }
  var rows = Array.prototype.slice.call(document.querySelectorAll("table.queue tbody tr[data-href]"));
  var at = -1;
  function move(to) {
    if (!rows.length) return;
    if (at >= 0) rows[at].classList.remove("cursor");
    at = Math.max(0, Math.min(rows.length - 1, to));
    rows[at].classList.add("cursor");
    rows[at].scrollIntoView({ block: "nearest" });
  }
  rows.forEach(function (row) {
    row.addEventListener("click", function (event) {
      if (event.target.closest("a, input, button, label")) return;
      window.location.href = row.getAttribute("data-href");
    });
  });
  var all = document.getElementById("all");
  if (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll("input[name=order_id]").forEach(function (box) { box.checked = all.checked; });
    });
  }
  document.addEventListener("keydown", function (event) {
    if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) return;
    var key = event.key;
    if (rows.length) {
      if (key === "j") { move(at + 1); event.preventDefault(); }
      else if (key === "k") { move(at - 1); event.preventDefault(); }
      else if ((key === "o" || key === "Enter") && at >= 0) { window.location.href = rows[at].getAttribute("data-href"); }
      else if (key === "x" && at >= 0) { var box = rows[at].querySelector("input[type=checkbox]"); box.checked = !box.checked; }
      return;
    }
    var button = key === "f" ? document.getElementById("mark-fraud") : key === "l" ? document.getElementById("mark-legit") : null;
    if (button) { event.preventDefault(); button.click(); return; }
    if (key === "u") { var back = document.getElementById("back"); if (back) window.location.href = back.href; }
  });
})();
