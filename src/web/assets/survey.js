// Offline-safe sending for the survey page. Answers are kept on the phone as they are given;
// "send" queues the response with its submission_id and posts it to the API, again and
// again until the server acknowledges it (retries are safe: the id makes them idempotent).
// Without this script the form posts as usual.
(function () {
  var f = document.querySelector('form[data-unit]');
  if (!f || !window.fetch || !window.localStorage || !window.FormData) return;
  var d = f.dataset, st = document.getElementById('st');
  var DRAFT = 'sipas:draft:' + d.unit + ':' + d.form, QUEUE = 'sipas:queue', USED = 'sipas:used';
  function get(k, none) { try { return JSON.parse(localStorage.getItem(k)) || none; } catch (e) { return none; } }
  function put(k, v) { try { localStorage.setItem(k, JSON.stringify(v)); } catch (e) {} }
  function say(msg, cls) { st.textContent = msg; st.className = cls; st.hidden = false; st.scrollIntoView({ block: 'nearest' }); }
  var sid = f.elements.submission_id;
  // A page reopened from the cache may carry an id already sent, or still waiting to be
  // sent: it is a new form, so it takes a fresh id (else its answers would count as a retry).
  var taken = get(USED, []).concat(get(QUEUE, []).map(function (i) { return i.submission_id; }));
  if (taken.indexOf(sid.value) >= 0 && window.crypto && crypto.randomUUID) sid.value = crypto.randomUUID();
  function fields() { var out = []; new FormData(f).forEach(function (v, k) { out.push([k, v]); }); return out; }
  var draft = get(DRAFT, null);
  if (draft && draft.sid) {
    sid.value = draft.sid;
    draft.fields.forEach(function (p) {
      var el = f.elements[p[0]];
      if (!el || p[0] === 't' || p[0] === 'submission_id') return;
      if (el.length && !el.options) { for (var i = 0; i < el.length; i++) if (el[i].value === p[1]) el[i].checked = true; }
      else if (el.type === 'checkbox' || el.type === 'radio') el.checked = el.value === p[1];
      else el.value = p[1];
    });
  }
  // How far the citizen is: questions with an answer, of all the questions (not the
  // respondent type, whose name is lower case).
  var pg = document.getElementById('pg');
  function progress() {
    var all = {}, done = {};
    for (var i = 0; i < f.elements.length; i++) {
      var el = f.elements[i];
      if ((el.type !== 'radio' && el.type !== 'checkbox') || !/^[A-Z]/.test(el.name)) continue;
      all[el.name] = 1;
      if (el.checked && el.value !== '') done[el.name] = 1;
    }
    var n = Object.keys(all).length, x = Object.keys(done).length;
    pg.textContent = pg.dataset.of.replace('{x}', x).replace('{n}', n).replace('{left}', n - x);
    pg.hidden = false;
  }
  if (pg) progress();
  f.addEventListener('change', function () { put(DRAFT, { sid: sid.value, fields: fields() }); if (pg) progress(); });
  function body() {
    var b = { submission_id: sid.value, unit: d.unit, form: d.form, channel: 'online', respondent_type: d.rt || '', answers: {}, demographics: {} };
    var multi = (d.multi || '').split(' ');
    fields().forEach(function (p) {
      var k = p[0], v = p[1];
      if (k === 'respondent_type') b.respondent_type = v;
      else if (k === 't') b.form_token = v;
      else if (k === 'service' || k === 'comment' || k === 'code' || k === 'website') { if (v) b[k] = v; }
      else if (k === 'gender' || k === 'age_band' || k === 'education' || k === 'occupation') { if (v) b.demographics[k] = v; }
      else if (/^[A-Z]/.test(k) && v !== '') {
        var n = parseInt(v, 10);
        if (multi.indexOf(k) >= 0) (b.answers[k] = b.answers[k] || []).push(n); else b.answers[k] = n;
      }
    });
    return b;
  }
  var busy = false;
  function flush() {
    var q = get(QUEUE, []);
    if (!q.length || busy) return;
    busy = true;
    var item = q[0];
    fetch('/api/v1/responses', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(item), credentials: 'omit' })
      .then(function (r) {
        busy = false;
        if (r.status === 200 || r.status === 201) {
          q.shift(); put(QUEUE, q);
          var used = get(USED, []); used.push(item.submission_id); put(USED, used.slice(-50));
          if (item.submission_id === sid.value) { f.hidden = true; window.scrollTo(0, 0); }
          say(d.ok, 'ok');
          flush();
        } else if (r.status === 400 || r.status === 413 || r.status === 422) {
          q.shift(); put(QUEUE, q);
          // The server shows what is wrong, inline, when the form is sent the plain way.
          if (item.submission_id === sid.value) f.submit();
        } else {
          say(d.wait, 'wait');
        }
      }, function () { busy = false; say(d.wait, 'wait'); });
  }
  f.addEventListener('submit', function (e) {
    e.preventDefault();
    var q = get(QUEUE, []);
    if (!q.some(function (i) { return i.submission_id === sid.value; })) q.push(body());
    put(QUEUE, q);
    localStorage.removeItem(DRAFT);
    say(d.sending, '');
    flush();
  });
  window.addEventListener('online', flush);
  setInterval(flush, 10000);
  flush();
  // The worker keeps this blank form for reopening offline (sw.js). A page it served is kept
  // already; a first visit loads before the worker runs, so that page asks to be kept.
  if (navigator.serviceWorker) {
    var first = !navigator.serviceWorker.controller;
    navigator.serviceWorker.register('/s/sw.js').catch(function () {});
    if (first) navigator.serviceWorker.ready.then(function (reg) { if (reg.active) reg.active.postMessage({ keep: location.href }); });
  }
})();
