// The module-level API, as in web-push: functions over one shared PushClient.
import { PushClient, type Payload } from './client.ts';
import type { PushSubscription, RequestOptions, SendResult } from './types.ts';

const shared = new PushClient();

/** Sends one message through the shared client (see PushClient.sendNotification). */
export function sendNotification(subscription: PushSubscription, payload?: Payload, options?: RequestOptions | null): Promise<SendResult> {
  return shared.sendNotification(subscription, payload, options);
}

/** Sends to many subscriptions through the shared client (see PushClient.sendMany). */
export function sendMany(...args: Parameters<PushClient['sendMany']>): ReturnType<PushClient['sendMany']> {
  return shared.sendMany(...args);
}

/** Cancels a message through the shared client (see PushClient.cancelNotification). */
export function cancelNotification(...args: Parameters<PushClient['cancelNotification']>): Promise<boolean> {
  return shared.cancelNotification(...args);
}

/** Closes the shared client's pooled connections so the process can exit; later sends reconnect. */
export function closeConnections(): Promise<void> {
  return shared.close();
}
