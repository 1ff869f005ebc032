"""The three answering modes (第1条): group, proxy, VPDN. Each turns a request into a decision."""
