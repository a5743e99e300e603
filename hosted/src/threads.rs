//! The threads home: memsrv on its own thread, client processes as handles.
