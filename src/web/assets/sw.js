// Keeps the survey pages for reopening without a connection: network first, the kept copy
// only when the network fails. Only blank forms (GET /s/...) and the page script are kept;
// posts, the API and one-time invitation links (?code=) never are. The server writes the
// build's asset version into __VERSION__: a new release is a new worker, which deletes the
// caches of the old one when it takes over.
var PREFIX = 'sipas-survey-', CACHE = PREFIX + '__VERSION__', SCRIPT = '/s/app.js?v=__VERSION__';
function kept(u) {
  return u.origin === self.location.origin && u.pathname.indexOf('/s/') === 0 && u.pathname !== '/s/sw.js' &&
    !u.searchParams.has('code');
}
function keep(request, response) {
  if (!response.ok || response.type !== 'basic') return Promise.resolve();
  var copy = response.clone();
  return caches.open(CACHE).then(function (c) { return c.put(request, copy); });
}
self.addEventListener('install', function (e) {
  e.waitUntil(caches.open(CACHE).then(function (c) { return c.add(SCRIPT); }).then(function () { return self.skipWaiting(); }));
});
self.addEventListener('activate', function (e) {
  e.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) { return n.indexOf(PREFIX) === 0 && n !== CACHE; }).map(renew));
  }).then(function () { return self.clients.claim(); }));
});
// The forms an old worker kept, fetched fresh from this release (the old copy if offline),
// then the old cache is deleted.
function renew(name) {
  return caches.open(name).then(function (old) {
    return old.keys().then(function (requests) {
      return Promise.all(requests.filter(function (q) { return new URL(q.url).pathname !== '/s/app.js'; }).map(function (q) {
        return fetch(q.url, { credentials: 'omit' }).then(function (res) { return keep(new Request(q.url), res); }, function () {
          return old.match(q).then(function (res) { return res && caches.open(CACHE).then(function (c) { return c.put(q, res); }); });
        });
      }));
    }).then(function () { return caches.delete(name); });
  });
}
// The first visit loads before the worker runs, so the page asks to be kept.
self.addEventListener('message', function (e) {
  var u;
  try { u = new URL(e.data && e.data.keep, self.location.origin); } catch (err) { return; }
  if (!kept(u)) return;
  e.waitUntil(fetch(u.href, { credentials: 'omit' }).then(function (res) { return keep(new Request(u.href), res); })
    .catch(function () {}));
});
self.addEventListener('fetch', function (e) {
  var r = e.request, u = new URL(r.url);
  if (r.method !== 'GET' || !kept(u)) return;
  e.respondWith(fetch(r).then(function (res) {
    e.waitUntil(keep(r, res));
    return res;
  }, function () {
    // Offline: this very page, else the same form in another language or version.
    return caches.open(CACHE).then(function (c) {
      return c.match(r, { ignoreVary: true }).then(function (hit) {
        return hit || c.match(r, { ignoreVary: true, ignoreSearch: true });
      });
    }).then(function (hit) { return hit || Response.error(); });
  }));
});
