// The demo's service worker (scope /demo/): shows each push as a notification and posts its text
// to the open demo pages, which add it to their log.
'use strict';

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

async function tellPages(message) {
  const pages = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  for (const page of pages) page.postMessage(message);
}

self.addEventListener('push', (event) => {
  const text = event.data ? event.data.text() : '(a push without data)';
  const shown = self.registration
    .showNotification('webpushd demo', { body: text, tag: 'webpushd-demo' })
    .then(() => tellPages({ kind: 'notification', text }))
    .catch((err) => tellPages({ kind: 'no-notification', text: `the browser did not show it (${err.message || err})` }));
  event.waitUntil(Promise.all([tellPages({ kind: 'push', text, at: Date.now() }), shown]));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(
    self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((pages) => {
      if (pages[0]) return pages[0].focus();
      return self.clients.openWindow('/demo/');
    }),
  );
});
