// Sluice approvals: keeps the pending list current without reloading, and
// tells a detail page when its approval changed. Server-sent events from
// /ui/events say *that* something changed; the rows come from /ui/pending,
// rendered (and escaped) by the server.
(function () {
  'use strict';
  var rows = document.getElementById('pending');
  var heading = document.querySelector('[data-approval-id]');
  var live = document.getElementById('live');
  if (!rows && !heading) return;

  function say(text) {
    if (live) live.textContent = text;
  }

  var inFlight = false;
  var again = false;
  function refresh() {
    if (!rows) return;
    if (inFlight) { again = true; return; }
    inFlight = true;
    fetch('/ui/pending', { credentials: 'same-origin', headers: { 'Accept': 'text/html' } })
      .then(function (r) {
        if (r.status === 401 || r.status === 403) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html !== null) rows.innerHTML = html;
      })
      .catch(function () { say('offline'); })
      .then(function () {
        inFlight = false;
        if (again) { again = false; refresh(); }
      });
  }

  var events = new EventSource('/ui/events');
  events.addEventListener('open', function () {
    say('live');
    // Catch up on whatever happened while disconnected.
    refresh();
  });
  events.addEventListener('error', function () { say('reconnecting…'); });
  events.addEventListener('resync', refresh);
  events.addEventListener('approval', function (e) {
    refresh();
    if (heading) {
      var change = JSON.parse(e.data);
      if (change.id === heading.getAttribute('data-approval-id')) {
        var note = document.getElementById('changed');
        if (note) note.hidden = false;
      }
    }
  });
})();
