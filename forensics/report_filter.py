"""The scan report's filter box: a form and a plain inline script (no assets, no network).

The form starts ``hidden`` and the script reveals it, so a page read without JavaScript shows
every row and no dead controls.
"""

from __future__ import annotations

from collections.abc import Iterable

from forensics.html import esc

FILTER_SCRIPT = """
(function () {
  var form = document.getElementById('filter');
  if (!form) { return; }
  form.hidden = false;
  var query = document.getElementById('filter-path');
  var boxes = form.querySelectorAll('input[type=checkbox]');
  var groups = document.querySelectorAll('tbody.group');
  var shown = document.getElementById('filter-shown');
  function apply() {
    var text = query.value.trim().toLowerCase();
    var on = {};
    var n = 0;
    var total = 0;
    boxes.forEach(function (b) { on[b.value] = b.checked; });
    groups.forEach(function (g) {
      var k = 0;
      g.querySelectorAll('tr.file').forEach(function (row) {
        total += 1;
        var path = (row.getAttribute('data-path') || '').toLowerCase();
        var visible = on[row.getAttribute('data-group')] !== false &&
          (!text || path.indexOf(text) >= 0);
        row.hidden = !visible;
        if (visible) { k += 1; }
      });
      g.hidden = k === 0;
      n += k;
    });
    shown.textContent = n + ' of ' + total + ' files shown';
  }
  form.addEventListener('input', apply);
  form.addEventListener('change', apply);
  form.addEventListener('submit', function (e) { e.preventDefault(); });
  apply();
})();
"""
"""Plain inline script: filter rows by path text and group. Without it every row shows."""


def filter_form(groups: Iterable[tuple[str, int]]) -> str:
    """The filter form: a path box and one checkbox per ``(group, count)``, in the given order."""
    boxes = "".join(
        f"<label><input type='checkbox' name='group' value='{esc(g)}' checked> "
        f"{esc(g)} ({n})</label>"
        for g, n in groups
    )
    return (
        "<form class='filter' id='filter' hidden>"
        "<label>path contains <input type='search' id='filter-path' "
        "placeholder='part of a file name or folder' autocomplete='off'></label>"
        f"{boxes}<span id='filter-shown' aria-live='polite'></span></form>\n"
    )
