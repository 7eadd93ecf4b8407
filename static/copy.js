// The Copy button beside a new API key. One listener for every Copy button, including ones htmx
// swaps in later; a file, not inline script, so the Content-Security-Policy can forbid inline script.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy-target]");
  if (!button) return;
  var input = document.getElementById(button.dataset.copyTarget);
  var status = document.getElementById(button.dataset.copyStatus);
  var manual = "The key is selected: press Ctrl+C (or ⌘C on a Mac) to copy it.";
  input.focus();
  input.select();  // the fallback: a selected field is one keystroke from the clipboard
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(input.value).then(
      function () { status.textContent = "Copied to the clipboard."; },
      function () { status.textContent = manual; });
  } else {
    status.textContent = manual;
  }
});
