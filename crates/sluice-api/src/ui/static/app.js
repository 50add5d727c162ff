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

// Session playback: a recorded session's timeline shown as it happened.
// Each entry carries its offset from the session's start; Play hides them
// all and shows each when the playback clock passes its offset, at the
// chosen speed, optionally skipping idle gaps longer than two seconds.
(function () {
  'use strict';
  var player = document.getElementById('player');
  var list = document.getElementById('timeline');
  if (!player || !list) return;
  var entries = Array.prototype.slice.call(list.querySelectorAll('li[data-offset-ms]'));
  if (entries.length === 0) return;
  player.hidden = false;
  var play = document.getElementById('play');
  var pause = document.getElementById('pause');
  var restart = document.getElementById('restart');
  var speed = document.getElementById('speed');
  var skip = document.getElementById('skip-idle');
  var clock = document.getElementById('clock');
  var MAX_GAP = 2000;
  var next = 0;        // index of the next entry to show
  var at = 0;          // playback clock, ms of session time
  var timer = null;

  function offset(i) { return Number(entries[i].getAttribute('data-offset-ms')) || 0; }
  function show(i) {
    entries.forEach(function (e) { e.classList.remove('playing'); });
    entries[i].classList.remove('unplayed');
    entries[i].classList.add('playing');
  }
  function tick() {
    clock.textContent = '+' + (at / 1000).toFixed(3) + 's';
  }
  function step() {
    timer = null;
    if (next >= entries.length) { stop(); return; }
    at = offset(next);
    show(next);
    tick();
    next += 1;
    if (next >= entries.length) { stop(); return; }
    var gap = offset(next) - at;
    if (skip.checked && gap > MAX_GAP) gap = MAX_GAP;
    timer = setTimeout(step, Math.max(0, gap / Number(speed.value || 1)));
  }
  function stop() {
    if (timer) clearTimeout(timer);
    timer = null;
    play.disabled = false;
    pause.disabled = true;
    player.setAttribute('data-state', next >= entries.length ? 'done' : 'paused');
  }
  function start() {
    if (next === 0 || next >= entries.length) reset();
    play.disabled = true;
    pause.disabled = false;
    player.setAttribute('data-state', 'playing');
    step();
  }
  function reset() {
    if (timer) clearTimeout(timer);
    timer = null;
    next = 0;
    at = 0;
    tick();
    entries.forEach(function (e) { e.classList.add('unplayed'); e.classList.remove('playing'); });
  }
  play.addEventListener('click', start);
  pause.addEventListener('click', stop);
  restart.addEventListener('click', function () { reset(); start(); });
})();
