// The child process of `bench placement`: runs the tasks it is sent over IPC, answering with
// progress and results, until the parent disconnects.
import { runTask, type PlacementTask, type WorkerMessage } from './placement-worker.ts';

const send = (m: WorkerMessage) => process.send!(m);

process.on('message', (task: PlacementTask) => {
  try {
    const result = runTask(task, (done, total) => send({ type: 'progress', id: task.id, done, total }));
    send({ type: 'result', id: task.id, result });
  } catch (err) {
    send({ type: 'error', id: task.id, message: (err as Error).stack ?? String(err) });
  }
});
process.on('disconnect', () => process.exit(0));
