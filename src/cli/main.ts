// The `webpushd` command.
import { Command } from 'commander';
import { aggregateCommand } from './aggregate.ts';
import { broadcastCommand } from './broadcast.ts';
import { ackCommand, cancelCommand } from './messages.ts';
import { receiptsCommand } from './receipts.ts';
import { migrateCommand } from './migrate.ts';
import { secretCommand } from './secret.ts';
import { sendCommand } from './send.ts';
import { serveCommand } from './serve.ts';
import { uaCommand } from './ua.ts';
import { vapidCommand } from './vapid.ts';

const program = new Command('webpushd')
  .description('A self-hosted Web Push service, and the tools to use it from both sides')
  .version('0.1.0')
  .showHelpAfterError();
program.addCommand(serveCommand());
program.addCommand(vapidCommand());
program.addCommand(sendCommand());
program.addCommand(aggregateCommand());
program.addCommand(uaCommand());
program.addCommand(receiptsCommand().addCommand(sendCommand('receipt-subscribe')));
program.addCommand(cancelCommand());
program.addCommand(ackCommand());
program.addCommand(secretCommand());
program.addCommand(broadcastCommand());
program.addCommand(migrateCommand());
await program.parseAsync(process.argv);
