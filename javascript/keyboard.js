// Keyboard habits of Stable Diffusion web UI users (A1111's keys), on the tab shown:
//   Ctrl+Enter presses Generate; while this tab's job runs it interrupts it and generates again once
//   it has stopped, as A1111 does (so an edited prompt takes over at once);
//   Alt+Enter presses Skip (the current image of a batch) and Esc presses Interrupt, while a job runs;
//   Ctrl+Up / Ctrl+Down in a prompt box changes the weight of the selected text (or the word at the
//   caret) with the (text:1.1) syntax, in steps of 0.1.
// Interrupt and Skip act on this tab's own job only (see modules/ui/generation.py).
(function () {
  const STEP = 0.1;

  function tabOf(textarea) {
    const box = textarea.closest("[id$='_prompt'], [id$='_neg_prompt']");
    if (!box) return null;
    return box.id.replace(/_neg_prompt$/, "").replace(/_prompt$/, "");
  }

  function selectWordAtCaret(text, start, end) {
    if (start !== end) return [start, end];
    const isWord = (c) => c && !/[\s,()\[\]:<>|]/.test(c);
    while (start > 0 && isWord(text[start - 1])) start--;
    while (end < text.length && isWord(text[end])) end++;
    return [start, end];
  }

  function changeWeight(textarea, up) {
    let text = textarea.value;
    let [start, end] = selectWordAtCaret(text, textarea.selectionStart, textarea.selectionEnd);
    if (start === end) return false;
    // Already inside "(text:w)": adjust w.
    const before = text.slice(0, start);
    const after = text.slice(end);
    const weighted = /^:(-?\d+(?:\.\d+)?)\)/.exec(after);
    if (before.endsWith("(") && weighted) {
      const weight = (parseFloat(weighted[1]) + (up ? STEP : -STEP)).toFixed(1);
      const rest = after.slice(weighted[0].length);
      if (weight === "1.0") {
        textarea.value = before.slice(0, -1) + text.slice(start, end) + rest;
        start -= 1;
        end -= 1;
      } else {
        textarea.value = before + text.slice(start, end) + ":" + weight + ")" + rest;
      }
    } else {
      const weight = (1 + (up ? STEP : -STEP)).toFixed(1);
      textarea.value = before + "(" + text.slice(start, end) + ":" + weight + ")" + after;
      start += 1;
      end += 1;
    }
    textarea.setSelectionRange(start, end);
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
    return true;
  }

  // The shown tab's button whose id ends with suffix ("_generate"...); hidden tabs' are not shown.
  function shownButton(suffix) {
    for (const button of document.querySelectorAll(`button[id$='${suffix}']`)) {
      if (button.offsetParent !== null) return button;
    }
    return null;
  }

  function whenShown(suffix, then) {
    const observer = new MutationObserver(() => {
      const button = shownButton(suffix);
      if (button) {
        observer.disconnect();
        then(button);
      }
    });
    observer.observe(document.body, { childList: true, subtree: true, attributes: true });
  }

  // Generate again once the interrupted job has ended. Gradio drops a click that comes while the
  // button's previous event is still finishing (its trigger_mode "once", which also keeps a
  // double-click from queueing two jobs), so click again until the new job shows its Interrupt.
  function generateAgain(button) {
    let started = false;
    const watch = new MutationObserver(() => {
      if (shownButton("_interrupt")) started = true;
    });
    watch.observe(document.body, { childList: true, subtree: true, attributes: true });
    let tries = 0;
    const retry = () => {
      if (started || ++tries > 40 || button.offsetParent === null) return watch.disconnect();
      button.click();
      setTimeout(retry, 250);
    };
    retry();
  }

  function generate() {
    const interrupt = shownButton("_interrupt");
    if (interrupt) {
      interrupt.click();
      whenShown("_generate", generateAgain);
      return true;
    }
    const button = shownButton("_generate");
    if (button) button.click();
    return Boolean(button);
  }

  function press(suffix) {
    const button = shownButton(suffix);
    if (button) button.click();
    return Boolean(button);
  }

  // Esc inside an open list or a full-screen image closes that, as the user expects, and no more.
  function escapeIsTaken(target) {
    return Boolean(target.closest && target.closest("[aria-expanded='true'], [role='listbox'], .preview"));
  }

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    const enter = event.key === "Enter";
    let handled = false;
    if (enter && (event.ctrlKey || event.metaKey)) handled = generate();
    else if (enter && event.altKey) handled = press("_skip");
    else if (event.key === "Escape" && !escapeIsTaken(target)) handled = press("_interrupt");
    else if (event.ctrlKey && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
      if (target instanceof HTMLTextAreaElement && tabOf(target)) {
        handled = changeWeight(target, event.key === "ArrowUp");
      }
    }
    if (handled) event.preventDefault();
  });
})();
