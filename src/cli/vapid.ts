// `webpushd vapid generate`: a VAPID key pair for an application server.
import { Command } from 'commander';
import { generateVapidKeys } from '../vapid/sign.ts';

export function vapidCommand(): Command {
  const vapid = new Command('vapid').description('VAPID (RFC 8292) keys for application servers');
  vapid
    .command('generate')
    .description('Print a new key pair as JSON: {"publicKey","privateKey"} (base64url)')
    .action(() => {
      process.stdout.write(`${JSON.stringify(generateVapidKeys())}\n`);
    });
  return vapid;
}
