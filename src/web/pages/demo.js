// The demo page: registers /demo/sw.js, subscribes with the demo application server's VAPID key,
// shows the subscription, sends test notifications through POST /demo/send and logs what the
// service worker posts back. `?autosend=1` sends one test notification once subscribed. The
// page sends nothing anywhere but to its own origin (its log holds the subscription's keys).
'use strict';

const params = new URLSearchParams(location.search);
// Firefox's first PushManager call can be lost and never settle: each attempt has a deadline.
const ATTEMPT_MS = [3000, 6000, 10000, 10000];

const $ = (id) => document.getElementById(id);
let subscription = null;

function log(kind, text) {
  const li = document.createElement('li');
  li.className = kind;
  li.textContent = `${new Date().toLocaleTimeString()}  ${kind.padEnd(12)} ${text}`;
  $('log').append(li);
}

function state(text) {
  $('state').textContent = text;
}

function firefoxNote(detail) {
  $('ws-url').textContent = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`;
  $('note-detail').textContent = detail;
  $('firefox-note').hidden = false;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function retry(what, fn) {
  for (const [i, ms] of ATTEMPT_MS.entries()) {
    try {
      return await withTimeout(fn(), ms, what);
    } catch (err) {
      if (err instanceof DOMException && err.name !== 'AbortError') throw err;
      log('info', `${what}: attempt ${i + 1} failed (${err.message}), trying again`);
      if (i === ATTEMPT_MS.length - 1) throw err;
      await sleep(1000);
    }
  }
}

function base64url(buffer) {
  return btoa(String.fromCharCode(...new Uint8Array(buffer))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

async function subscribe(reg, key) {
  const existing = await retry('getSubscription', () => reg.pushManager.getSubscription());
  if (existing) {
    const same = existing.options.applicationServerKey && base64url(existing.options.applicationServerKey) === key;
    if (same) {
      log('info', 'found the subscription made earlier');
      return existing;
    }
    log('info', 'the subscription made earlier used another key: unsubscribing it');
    await existing.unsubscribe();
  }
  return retry('subscribe', () => reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key }));
}

async function send() {
  if (!subscription) return;
  const text = $('text').value;
  $('send').disabled = true;
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
    $('send').disabled = false;
  }
}

async function main() {
  if (!('serviceWorker' in navigator) || !('PushManager' in window)) {
    state('this browser has no Push API here');
    firefoxNote('No service worker or PushManager: open this page over https:// or on localhost/127.0.0.1.');
    return;
  }
  navigator.serviceWorker.addEventListener('message', (event) => {
    const m = event.data || {};
    if (m.kind === 'push') log('push', `received: "${m.text}"`);
    else if (m.kind === 'notification') log('notification', `shown: "${m.text}"`);
    else if (m.kind === 'no-notification') log('info', `notification: ${m.text}`);
    else log('error', String(m.text));
  });
  try {
    const { publicKey, endpointPrefix } = await (await fetch('/demo/key')).json();
    log('info', `demo application server key ${publicKey.slice(0, 16)}…`);
    const reg = await navigator.serviceWorker.register('/demo/sw.js', { scope: '/demo/' });
    await withTimeout(navigator.serviceWorker.ready, 10000, 'service worker activation');
    log('info', 'service worker active');
    state('subscribing…');
    const sub = await subscribe(reg, publicKey);
    subscription = sub.toJSON();
    $('subscription').textContent = JSON.stringify(subscription, null, 2);
    if (!subscription.endpoint.startsWith(endpointPrefix)) {
      state('subscribed, but through another push service');
      firefoxNote(`The endpoint ${subscription.endpoint} is not on this service (${endpointPrefix}…): this browser uses its own push service.`);
      log('error', 'the endpoint is not on this service: the demo server will not send to it');
      return;
    }
    state('subscribed through this service');
    log('subscribed', subscription.endpoint.replace(/(\/wpush\/v\d\/).{12}.*/, '$1…'));
    $('send').disabled = false;
    $('send').addEventListener('click', send);
    if (params.get('autosend') === '1') await send();
  } catch (err) {
    state('could not subscribe');
    log('error', `subscribe failed: ${err}`);
    firefoxNote(`Subscribing failed (${err}). Only Firefox can use a push service other than its vendor's.`);
  }
}

main();
