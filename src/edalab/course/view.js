// edalab's live view of a stream (edalab.course.view): the kernel draws the picture as SVG
// (the same drawing the notebook keeps as its static output); this script puts it on the
// page and flashes every part whose value changed since the last picture, so a learner
// sees what moved. No network: anywidget loads this file from the edalab package.
function values(root) {
  const seen = new Map();
  for (const el of root.querySelectorAll("[data-key]")) {
    seen.set(el.getAttribute("data-key"), el.getAttribute("data-value"));
  }
  return seen;
}

function render({ model, el }) {
  const box = document.createElement("div");
  box.className = "edalab-view";
  el.appendChild(box);
  let before = new Map();
  const draw = () => {
    box.innerHTML = model.get("svg");
    box.setAttribute("data-status", model.get("status"));
    const now = values(box);
    for (const el of box.querySelectorAll("[data-key]")) {
      const key = el.getAttribute("data-key");
      if (before.size && before.get(key) !== now.get(key)) {
        el.classList.add("edalab-changed");
      }
    }
    before = now;
  };
  draw();
  model.on("change:svg", draw);
  return () => model.off("change:svg", draw);
}

export default { render };
