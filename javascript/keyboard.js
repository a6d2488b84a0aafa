// Keyboard habits of Stable Diffusion web UI users:
//   Ctrl+Enter in a prompt box presses that tab's Generate button;
//   Ctrl+Up / Ctrl+Down changes the weight of the selected text (or the word at the caret) with the
//   (text:1.1) syntax, in steps of 0.1.
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

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (!(target instanceof HTMLTextAreaElement) || !event.ctrlKey) return;
    const tab = tabOf(target);
    if (!tab) return;
    if (event.key === "Enter") {
      const button = document.getElementById(tab + "_generate");
      if (button && button.offsetParent !== null) {
        event.preventDefault();
        button.click();
      }
    } else if (event.key === "ArrowUp" || event.key === "ArrowDown") {
      if (changeWeight(target, event.key === "ArrowUp")) event.preventDefault();
    }
  });
})();
