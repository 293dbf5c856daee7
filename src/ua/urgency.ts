// RFC 8030 5.3: the user agent asks for messages of this urgency and up; less urgent ones wait
// at the push service.
import type { Urgency } from '../sdk/types.ts';

export type UrgencyLevel = Urgency;
export const URGENCY_LEVELS: readonly UrgencyLevel[] = ['very-low', 'low', 'normal', 'high'];

export function isUrgencyLevel(value: unknown): value is UrgencyLevel {
  return typeof value === 'string' && (URGENCY_LEVELS as readonly string[]).includes(value);
}
