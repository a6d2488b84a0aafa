// Tooltips (title) and accessible names (aria-label) of buttons, from the table modules/ui/icons.py
// writes into window.sdwebuiHints (class "ui-hint-<kind>" -> [name, tooltip]). Gradio re-renders
// buttons (a tab shown, a button made visible), so the attributes are set again after DOM changes.
(function () {
  function apply() {
    const hints = window.sdwebuiHints || {};
    for (const element of document.querySelectorAll(".ui-hint")) {
      for (const cls of element.classList) {
        const hint = hints[cls];
        if (!hint) continue;
        const [name, tooltip] = hint;
        if (element.title !== tooltip) element.title = tooltip;
        if (name && element.getAttribute("aria-label") !== name) element.setAttribute("aria-label", name);
      }
    }
  }

  let pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      apply();
    });
  }

  function start() {
    apply();
    new MutationObserver(schedule).observe(document.body, { childList: true, subtree: true });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
