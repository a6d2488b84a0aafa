// Dark or light page, as in AUTOMATIC1111's web UI: Gradio itself honours "?__theme=dark|light";
// without that parameter we add the one from the "ui_theme" setting (window.sdwebuiTheme, set by the
// server), so the setting decides and a URL parameter still wins.
(function () {
  const params = new URLSearchParams(window.location.search);
  const wanted = window.sdwebuiTheme;
  if (params.has("__theme") || (wanted !== "dark" && wanted !== "light")) return;
  params.set("__theme", wanted);
  window.location.replace(window.location.pathname + "?" + params.toString() + window.location.hash);
})();
