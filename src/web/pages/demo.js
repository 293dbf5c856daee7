// The demo page: registers /demo/sw.js; its Subscribe button subscribes with the demo
// application server's VAPID key (Firefox asks for the notification permission only from a user
// gesture, so nothing is asked on load), its Unsubscribe button removes the subscription. It
// shows the subscription, sends test notifications through POST /demo/send and logs what the
// service worker posts back. Each way subscribing fails gets a message saying what to do.
// `?autosend=1` sends one test notification once subscribed. The page sends nothing anywhere but
// to its own origin (its log holds the subscription's keys).
'use strict';

const params = new URLSearchParams(location.search);
// Firefox's first PushManager call can be lost and never settle: each attempt has a deadline.
const ATTEMPT_MS = [3000, 6000, 10000, 10000];

const $ = (id) => document.getElementById(id);
/** {publicKey, endpointPrefix, serverURL} from GET /demo/key. */
let demo = null;
let registration = null;
/** The subscription's JSON, while there is one. */
let subscription = null;
let busy = false;
let autosent = false;

function log(kind, text) {
  const li = document.createElement('li');
  li.className = kind;
  li.textContent = `${new Date().toLocaleTimeString()}  ${kind.padEnd(12)} ${text}`;
  $('log').append(li);
}

function state(text) {
  $('state').textContent = text;
}

/** Shows what went wrong and what to do; `prefs`: about:config lines to set. */
function problem(title, text, prefs) {
  $('problem-title').textContent = title;
  $('problem-text').textContent = text;
  $('problem-prefs').textContent = prefs || '';
  $('problem-prefs').hidden = !prefs;
  $('problem').hidden = false;
}

/** The about:config lines that make Firefox subscribe through this service. */
function prefsForThisService() {
  const lines = [`dom.push.serverURL = ${demo.serverURL}`];
  if (demo.serverURL.startsWith('ws:')) lines.push('dom.push.testing.allowInsecureServerURL = true');
  return lines.join('\n');
}

const onThisService = () => subscription !== null && subscription.endpoint.startsWith(demo.endpointPrefix);

function updateButtons() {
  $('subscribe').disabled = busy || registration === null || subscription !== null;
  $('unsubscribe').disabled = busy || subscription === null;
  $('send').disabled = busy || !onThisService();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Calls fn, again after a lost or aborted attempt. */
async function retry(what, fn) {
  for (const [i, ms] of ATTEMPT_MS.entries()) {
    try {
      return await withTimeout(fn(), ms, what);
    } catch (err) {
      if (err instanceof DOMException && err.name !== 'AbortError') throw err;
      if (i === ATTEMPT_MS.length - 1) throw err;
      log('info', `${what}: attempt ${i + 1} failed (${err.message}), trying again`);
      await sleep(1000);
    }
  }
}

function base64url(buffer) {
  return btoa(String.fromCharCode(...new Uint8Array(buffer))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function show(sub, how) {
  subscription = sub.toJSON();
  $('subscription').textContent = JSON.stringify(subscription, null, 2);
  $('problem').hidden = true;
  if (!onThisService()) {
    state('subscribed, but through another push service');
    problem(
      'This subscription is not on this push service',
      `Its endpoint is on ${new URL(subscription.endpoint).origin}, not ${demo.endpointPrefix}…: this browser subscribes ` +
        'through another push service, so the demo application server will not send to it. Firefox subscribes through ' +
        'the service named by about:config dom.push.serverURL: set the lines below, restart Firefox, then Unsubscribe ' +
        "and Subscribe again. Other browsers always use their vendor's push service.",
      prefsForThisService(),
    );
    log('error', 'the endpoint is not on this service: the demo server will not send to it');
    return;
  }
  state('subscribed through this service');
  log('subscribed', `${how}: ${subscription.endpoint.replace(/(\/wpush\/v\d\/).{12}.*/, '$1…')}`);
  if (params.get('autosend') === '1' && !autosent) {
    autosent = true;
    send();
  }
}

/** What a failed subscribe() means, and what to do about it. */
function explain(err) {
  log('error', `subscribe failed: ${err}`);
  if (err && err.name === 'NotAllowedError' && Notification.permission === 'denied') {
    state('notifications are blocked for this site');
    problem(
      'Notifications are blocked for this site',
      'A push subscription needs the permission to show notifications, and this site has it blocked. Allow it ' +
        'from the address bar: click the icon just left of the address (the permissions icon, or a crossed-out ' +
        'bell), clear the block of "Send notifications" (or set it to Allow), then click Subscribe again.',
    );
  } else if (err && err.name === 'NotAllowedError') {
    state('the permission was not given');
    problem(
      'The permission prompt was dismissed',
      'A push subscription needs the permission to show notifications. Click Subscribe and choose Allow in the ' +
        'prompt that opens below the address bar. If none opens, click the icon just left of the address and ' +
        'allow notifications for this site.',
    );
  } else {
    state('could not subscribe');
    problem(
      'The browser could not subscribe through its push service',
      `${err}. Firefox subscribes through the push service named by about:config dom.push.serverURL: for this ` +
        'service set the lines below (then restart Firefox) and check that the service is reachable from this ' +
        "browser. Other browsers always use their vendor's push service.",
      prefsForThisService(),
    );
  }
}

function subscribe() {
  busy = true;
  updateButtons();
  state('subscribing… (allow notifications when the browser asks)');
  // Asked within the click: Firefox shows its permission prompt only for a user gesture. A person
  // takes their time to answer, so no deadline until it is granted; subscribe() then asks nothing.
  const permission = Notification.permission === 'granted' ? Promise.resolve('granted') : Notification.requestPermission();
  permission
    .then((answer) => {
      if (answer !== 'granted') throw new DOMException(`notification permission: ${answer}`, 'NotAllowedError');
      return retry('subscribe', () => registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: demo.publicKey }));
    })
    .then((sub) => show(sub, 'new subscription'), explain)
    .finally(() => {
      busy = false;
      updateButtons();
    });
}

async function unsubscribe() {
  busy = true;
  updateButtons();
  try {
    const sub = await registration.pushManager.getSubscription();
    if (sub) await sub.unsubscribe();
    subscription = null;
    $('subscription').textContent = 'none';
    $('problem').hidden = true;
    state('not subscribed: click Subscribe');
    log('unsubscribed', 'the push service no longer delivers to this browser for that endpoint');
  } catch (err) {
    log('error', `unsubscribe failed: ${err}`);
  } finally {
    busy = false;
    updateButtons();
  }
}

async function send() {
  if (!onThisService()) return;
  const text = $('text').value;
  busy = true;
  updateButtons();
  try {
    const res = await fetch('/demo/send', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ subscription, text }),
    });
    const body = await res.json();
    if (res.ok) log('sent', `"${text}" accepted by the push service (${body.status})`);
    else log('error', `send failed: ${body.message ?? body.error}`);
  } catch (err) {
    log('error', `send failed: ${err}`);
  } finally {
    busy = false;
    updateButtons();
  }
}

async function main() {
  $('subscribe').addEventListener('click', subscribe);
  $('unsubscribe').addEventListener('click', unsubscribe);
  $('send').addEventListener('click', send);
  if (!window.isSecureContext) {
    state('push needs a secure context');
    return problem(
      'Push needs a secure page',
      'Service workers and push work only over https:// or on http://localhost and http://127.0.0.1: open this page so.',
    );
  }
  if (!('serviceWorker' in navigator)) {
    state('service workers are off');
    return problem('Service workers are off', 'This browser offers no service workers here (a private window, or dom.serviceWorkers.enabled is false): use a normal window.');
  }
  if (!('PushManager' in window)) {
    state('push is disabled in this browser');
    return problem('Push is disabled in this browser', 'This browser offers no Push API. In Firefox, set about:config dom.push.enabled to true, then reload this page.');
  }
  navigator.serviceWorker.addEventListener('message', (event) => {
    const m = event.data || {};
    if (m.kind === 'push') log('push', `received: "${m.text}"`);
    else if (m.kind === 'notification') log('notification', `shown: "${m.text}"`);
    else if (m.kind === 'no-notification') log('info', `notification: ${m.text}`);
    else log('error', String(m.text));
  });
  try {
    demo = await (await fetch('/demo/key')).json();
    log('info', `demo application server key ${demo.publicKey.slice(0, 16)}…`);
    const reg = await navigator.serviceWorker.register('/demo/sw.js', { scope: '/demo/' });
    await withTimeout(navigator.serviceWorker.ready, 10000, 'service worker activation');
    log('info', 'service worker active');
    const existing = await retry('getSubscription', () => reg.pushManager.getSubscription());
    registration = reg;
    if (existing && existing.options.applicationServerKey && base64url(existing.options.applicationServerKey) === demo.publicKey) {
      show(existing, 'found the subscription made earlier');
    } else {
      // one made with another key (an earlier demo-vapid.json) would make subscribe() fail
      if (existing) await existing.unsubscribe();
      state('not subscribed: click Subscribe');
    }
  } catch (err) {
    state('could not start');
    log('error', `start failed: ${err}`);
    problem('The demo could not start', String(err), demo ? prefsForThisService() : undefined);
  }
  updateButtons();
}

main();
