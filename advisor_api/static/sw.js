// 页面外壳、最近一次的任务列表和名单上会员的页面:先走网络,断网时用缓存。
var CACHE = "tiantian-advisor-v1";
self.addEventListener("install", function (e) {
  e.waitUntil(caches.open(CACHE).then(function (c) { return c.addAll(["/web/advisor/", "/web/advisor/app.js"]); }));
  self.skipWaiting();
});
self.addEventListener("activate", function (e) { e.waitUntil(self.clients.claim()); });
self.addEventListener("fetch", function (e) {
  var req = e.request;
  if (req.method !== "GET") return;
  e.respondWith(fetch(req).then(function (res) {
    if (res.ok) { var copy = res.clone(); caches.open(CACHE).then(function (c) { c.put(req, copy); }); }
    return res;
  }).catch(function () {
    return caches.match(req, { ignoreVary: true }).then(function (hit) { return hit || Response.error(); });
  }));
});
