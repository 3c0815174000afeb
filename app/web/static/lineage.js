// Highlights, in the lineage picture, what reads the selected column, without reloading the page.
// The links work without this script (the server draws the same highlight).
(function () {
  "use strict";
  var graph = document.querySelector(".graph");
  if (!graph) { return; }
  // On a narrow screen, start with the asset in focus in view rather than the far upstream; again
  // when the screen changes width (a phone turned), until the reader scrolls the picture themself.
  var focus = graph.querySelector(".node.focus rect");
  var moved = false;
  function center() {
    if (!focus || moved || graph.scrollWidth <= graph.clientWidth) { return; }
    var x = parseFloat(focus.getAttribute("x")) || 0;
    graph.scrollLeft = Math.max(0, x - (graph.clientWidth - parseFloat(focus.getAttribute("width") || 0)) / 2);
  }
  ["pointerdown", "wheel", "touchstart", "keydown"].forEach(function (name) {
    graph.addEventListener(name, function () { moved = true; }, { passive: true });
  });
  window.addEventListener("resize", center);
  center();
  function mark(column) {
    graph.querySelectorAll("[data-hits]").forEach(function (el) {
      var hits = (el.getAttribute("data-hits") || "").split(" ");
      el.classList.toggle("hot", column !== null && hits.indexOf(column) !== -1);
    });
  }
  document.querySelectorAll("a.select-column").forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      var column = link.getAttribute("data-column");
      var on = link.getAttribute("aria-pressed") !== "true";
      document.querySelectorAll("a.select-column").forEach(function (other) {
        other.setAttribute("aria-pressed", "false");
      });
      link.setAttribute("aria-pressed", on ? "true" : "false");
      mark(on ? column : null);
      if (window.history && window.history.replaceState) {
        window.history.replaceState(null, "", link.getAttribute("href"));
      }
      graph.scrollIntoView({ block: "nearest" });
    });
  });
})();
