// winston JSON logs, one object per line, with the message under "msg" (the contract's
// "router listening" line is {"msg":"router listening","port":...}).
import winston from 'winston';

export type Logger = winston.Logger;
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const toLine = winston.format.printf((info) => {
  const { level, message, timestamp, ...rest } = info;
  return JSON.stringify({ ts: timestamp, level, msg: message, ...rest });
});

export function createLogger(level: LogLevel = 'info'): Logger {
  return winston.createLogger({
    level: level === 'silent' ? 'error' : level,
    silent: level === 'silent',
    format: winston.format.combine(winston.format.timestamp(), toLine),
    transports: [new winston.transports.Console()],
  });
}
