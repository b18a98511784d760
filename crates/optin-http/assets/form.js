// Optional: the form works without this. It names countries in the page's language
// ("Germany (+49)" instead of "DE (+49)") and keeps the selector sorted by name.
(function () {
  var select = document.getElementById("country");
  if (!select || typeof Intl === "undefined" || !Intl.DisplayNames) return;
  var names;
  try { names = new Intl.DisplayNames([document.documentElement.lang], { type: "region" }); } catch (e) { return; }
  var options = Array.prototype.slice.call(select.options);
  options.forEach(function (option) {
    if (!option.value) return;
    var name = names.of(option.value);
    if (name && name !== option.value) option.textContent = name + " (+" + option.getAttribute("data-calling-code") + ")";
  });
  options.sort(function (a, b) {
    if (!a.value || !b.value) return a.value ? 1 : -1;
    return a.textContent.localeCompare(b.textContent);
  });
  var selected = select.value;
  options.forEach(function (option) { select.appendChild(option); });
  select.value = selected;
})();
