// The `webpushd` command.
import { Command } from 'commander';
import { serveCommand } from './serve.ts';

const program = new Command('webpushd')
  .description('A self-hosted Web Push service')
  .version('0.1.0')
  .showHelpAfterError();
program.addCommand(serveCommand());
await program.parseAsync(process.argv);
