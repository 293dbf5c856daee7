// The public API of the webpushd package: the application-server SDK and the user-agent client
// (each also a package of its own: webpushd-sdk, webpushd-client).
export * from './sdk/index.ts';
export * from './ua/index.ts';
