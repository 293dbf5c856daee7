import { Command } from 'commander';

export function uaCommand(): Command {
  return new Command('ua').description('A user agent: subscribe through a push service and listen for messages');
}
