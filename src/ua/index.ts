// The user-agent client's public API (the webpushd-client package): subscribe through a push
// service and receive messages. Its one dependency is ws.
export {
  PushUserAgent,
  ListenerError,
  RetryLater,
  isVapidPublicKey,
  type PushUserAgentOptions,
  type PushUserAgentEvents,
  type PushSubscriptionJSON,
  type ConnectEvent,
  type ConnectingEvent,
  type DisconnectEvent,
  type ResetEvent,
  type MessageErrorEvent,
} from './client.ts';
export { DecryptionError, type PushMessage } from './message.ts';
export { StateError, type UaState, type StoredSubscription } from './state.ts';
export { ConnectionError, PushServiceError } from './websocket-client.ts';
