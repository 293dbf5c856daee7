import { Command } from 'commander';

export function sendCommand(): Command {
  return new Command('send').description('Send a Web Push message to a subscription');
}
