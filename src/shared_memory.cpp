// SharedMemory and its resource tracker: in progress (issue #3).
