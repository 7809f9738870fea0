// 顾问页:离线时把通话结果存进 IndexedDB,联网后按 client_outcome_id 补发(重复发送无害)。
(function () {
  "use strict";
  var DB = "tiantian", STORE = "outcomes", CACHE = "tiantian-advisor-v1";
  var STALE = 4 * 3600 * 1000;
  // A phone's clock may be wrong: calls are timed by the server's clock at page load.
  var queue = document.getElementById("queue"), served = Date.parse(queue.dataset.now || "");
  var skew = isNaN(served) ? 0 : served - Date.now();
  // A shared store phone: each advisor's queue is their own.
  var me = queue.dataset.advisor || "";
  var expired = false;
  function db() {
    return new Promise(function (ok, fail) {
      var r = indexedDB.open(DB, 1);
      r.onupgradeneeded = function () { r.result.createObjectStore(STORE, { keyPath: "id" }); };
      r.onsuccess = function () { ok(r.result); };
      r.onerror = function () { fail(r.error); };
    });
  }
  function tx(mode, fn) {
    return db().then(function (d) {
      return new Promise(function (ok, fail) {
        var t = d.transaction(STORE, mode), out = fn(t.objectStore(STORE));
        t.oncomplete = function () { ok(out && out.result); };
        t.onerror = function () { fail(t.error); };
      });
    });
  }
  function csrf() {
    var m = document.cookie.match(/(?:^|; )csrftoken=([^;]*)/);
    return m ? decodeURIComponent(m[1]) : "";
  }
  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin", redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", "x-csrftoken": csrf(), "accept": "application/json" },
      body: new URLSearchParams(body).toString()
    });
  }
  function send(item) {
    return post(item.url, item.body).then(function (r) {
      // Signed out meanwhile (a redirect to sign-in, or 401): keep it for later.
      if (r.type === "opaqueredirect" || r.status === 401) { expired = true; throw new Error("signed out"); }
      // 2xx: recorded (or a replay); other 4xx: it will never land, drop it.
      if (r.ok || (r.status >= 400 && r.status < 500 && r.status !== 401 && r.status !== 403)) return true;
      throw new Error("HTTP " + r.status);
    });
  }
  function pending() {
    return tx("readonly", function (s) { return s.getAll(); }).then(function (items) {
      return (items || []).filter(function (i) { return i.advisor === me; });
    });
  }
  function show() {
    return pending().then(function (items) {
      queue.textContent = items.length
        ? items.length + (expired ? " 条结果未同步:登录已过期,请重新登录" : " 条结果等待联网同步")
        : "";
      queue.dataset.waiting = String(items.length);
      return items;
    });
  }
  var syncing = false, again = false;
  function sync() {
    if (syncing) { again = true; return show(); }  // queued while a sync was running
    if (!navigator.onLine) return show();
    syncing = true;
    again = false;
    return pending().then(function (items) {
      return items.reduce(function (p, item) {
        return p.then(function () {
          return send(item).then(function () {
            return tx("readwrite", function (s) { return s.delete(item.id); });
          });
        });
      }, Promise.resolve()).then(function () {
        // Calls sent: the cached list must not show them open on the next offline start.
        if (items.length) return recache();
      });
    }).catch(function (e) { console.log("sync stopped: " + e); }).then(function () {
      syncing = false;
      return again ? sync() : show();
    });
  }
  function recache() {
    if (window.caches) return caches.open(CACHE).then(function (c) { return c.add("/web/advisor/"); });
  }
  function bump(section, by) {
    var n = section && section.querySelector(".n");
    if (!n) return;
    n.dataset.count = String(Number(n.dataset.count || 0) + by);
    n.textContent = n.dataset.count;
  }
  // A call recorded (or waiting to be sent): its card leaves its section for 已完成.
  function finish(taskId, result) {
    var card = document.getElementById("task-" + taskId);
    if (!card || card.dataset.done) return;
    card.dataset.done = "1";
    var list = document.getElementById("done-list");
    if (!list) { card.hidden = true; return; }
    bump(card.closest("section"), -1);
    bump(document.getElementById("s-done"), 1);
    var li = document.createElement("li"), a = document.createElement("a");
    var button = card.querySelector("button[value='" + result + "']");
    a.href = "/web/advisor/members/" + card.dataset.member;
    a.textContent = card.querySelector("summary b").textContent;
    li.id = card.id;
    li.appendChild(a);
    li.appendChild(document.createTextNode(" · " + (button ? button.textContent : result)));
    card.remove();
    list.insertBefore(li, list.firstChild);
  }
  function taskOf(url) { var m = /tasks\/(\d+)\/outcome/.exec(url); return m && m[1]; }
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.classList.contains("outcome")) return;
    // 明天再联系 posts the form to its own address, as a plain form.
    if (ev.submitter && ev.submitter.name === "until") return;
    ev.preventDefault();
    var id = (crypto.randomUUID && crypto.randomUUID()) || String(Date.now()) + Math.random();
    var body = {
      client_outcome_id: id,
      recorded_at: new Date(Date.now() + skew).toISOString(),
      result: ev.submitter ? ev.submitter.value : "reached",
      note: form.note.value,
      channel: "phone"
    };
    var item = { id: id, advisor: me, url: form.action, body: body };
    tx("readwrite", function (s) { return s.put(item); }).then(function () {
      var task = form.closest(".task");
      if (task) { task.hidden = true; }
      finish(taskOf(form.action), body.result);
      return sync();
    });
  });
  // An order's buttons go to the server, never to the queue: it decides who wins.
  function able(list, on) { list.forEach(function (b) { b.disabled = !on; }); }
  function orders() {
    var on = navigator.onLine;
    able(document.querySelectorAll("form.order button"), on);
    document.querySelectorAll(".onote").forEach(function (n) { n.hidden = on; });
  }
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.classList.contains("order")) return;
    ev.preventDefault();
    if (!navigator.onLine) return orders();
    var card = form.closest(".card"), st = card.querySelector(".ost"), bs = form.querySelectorAll("button");
    var url = (ev.submitter && ev.submitter.getAttribute("formaction")) || form.action;
    var act = url.split("/").pop();
    able(bs, false);
    post(url, new FormData(form)).then(function (r) {
      if (r.ok) return r.json().then(function (a) {
        if (a.status === "accepted") {
          form.remove();
          card.querySelector("form.drop").hidden = false;
          st.textContent = "已由我接单";
        } else if (a.status === "delivered") finish(card.id.slice(5), act);
        else { bump(card.closest("section"), -1); card.remove(); }
        recache();
      });
      // 409 on 接单: a colleague was first; 404: the order went on to another store.
      var s = r.status;
      st.textContent = s === 404 ? "已转给别的门店" : s === 409 ? { accept: "已被同事接单", decline: "已处理过" }[act] || "小票号已用过" : s === 422 ? "请核对小票号" : "未能记录,请重试";
      if (s === 404 || (s === 409 && act !== "delivered")) form.remove(); else able(bs, true);
    }).catch(function () { st.textContent = "未发出,请重试"; able(bs, true); });
  });
  window.addEventListener("offline", orders);
  window.addEventListener("online", orders);
  orders();
  // Enter in the note must not record the first result by accident.
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && ev.target.name === "note") ev.preventDefault();
  });
  // Signing out of a shared phone: the cached list of members goes with the session.
  document.addEventListener("submit", function (ev) {
    if (ev.target.action && ev.target.action.indexOf("/web/logout") >= 0 && window.caches) {
      caches.keys().then(function (keys) { keys.forEach(function (k) { caches.delete(k); }); });
    }
  }, true);
  window.addEventListener("online", sync);
  setInterval(sync, 30000);  // a send that failed on a flaky link is tried again
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/web/advisor/sw.js", { scope: "/web/advisor/" }).catch(function () {});
  }
  // Each card's script, from the list's one copy of it.
  var said = document.querySelectorAll("p[data-sc]");
  for (var k = 0; k < said.length; k++) {
    var text = document.getElementById("sc" + said[k].dataset.sc);
    if (text) said[k].textContent = "话术:" + text.textContent;
  }
  // A page from the cache (offline) still lists calls that wait to be sent.
  pending().then(function (items) {
    items.forEach(function (i) { finish(taskOf(i.url), i.body.result); });
  }).catch(function () {});
  // The members on today's list open offline too: their pages go into the service
  // worker's cache once the list has painted (one cached within STALE is left be;
  // opening one online refreshes it).
  function keep() {
    if (!window.caches || !navigator.onLine) return;
    var links = document.querySelectorAll("details.card a.m"), urls = [];
    for (var i = 0; i < links.length; i++) {
      if (urls.indexOf(links[i].pathname) < 0) urls.push(links[i].pathname);
    }
    caches.open(CACHE).then(function (c) {
      return urls.reduce(function (p, u) {
        return p.then(function () {
          return c.match(u).then(function (hit) {
            var age = hit ? Date.now() - Date.parse(hit.headers.get("date") || "") : NaN;
            return age < STALE ? null : c.add(u);  // none yet, or no longer fresh
          });
        });
      }, Promise.resolve());
    }).then(function () { document.body.dataset.cached = String(urls.length); })
      .catch(function (e) { console.log("caching members stopped: " + e); });
  }
  setTimeout(keep, 500);
  sync();
})();
